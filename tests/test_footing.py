"""Reading records against the reference timed beside them: the timer keeps when each run
started and keeps an anchor running beside everything else; `footing` reads each run against
the anchor's runs at that moment, so that a machine whose speed drifts gives the same figures
as a steady one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwnas.hw_profiles.schema import TimerSettings
from hwnas.profilers.footing import (
    MAX_GAP_S,
    Footing,
    figure_ms,
    group_anchors,
    paired_ratio,
    rescaled_ms,
)
from hwnas.profilers.timer import measure_group, time_interleaved


class Drifting:
    """A runnable whose time is `base` times a machine speed shared by every runnable, which
    drifts by a factor of up to 2 every few calls (a shared machine's minutes, compressed)."""

    speeds = [1.0, 1.6, 2.0, 1.3, 1.0, 1.8]
    calls: list[str] = []

    def __init__(self, name: str, base: float, noisy: bool = False) -> None:
        self.name, self.base = name, base
        self.jitter = itertools.cycle([1.0, 1.4, 1.0, 0.7] if noisy else [1.0])

    def time_once(self) -> float:
        Drifting.calls.append(self.name)
        speed = Drifting.speeds[len(Drifting.calls) // 8 % len(Drifting.speeds)]
        return self.base * speed * next(self.jitter)


SETTINGS = TimerSettings(warmup_runs=0, min_runs=5, max_runs=24, target_rel_iqr=0.01,
                         noise_threshold=0.1, block_s=0.0, max_remeasure=1)


def test_the_timer_keeps_when_each_run_started():
    out = time_interleaved([Drifting("a", 1.0), Drifting("b", 2.0)], SETTINGS)
    for t in out:
        assert len(t.stamps) == len(t.times_ms)
        assert list(t.stamps) == sorted(t.stamps)
    assert out[0].stamps[0] < out[1].stamps[0] < out[0].stamps[1]  # interleaved


def test_an_anchor_runs_beside_every_run_of_the_others():
    Drifting.calls = []
    # the anchor alone would stop early (steady); the others keep it running
    out = time_interleaved([Drifting("x", 3.0), Drifting("ref", 1.0)], SETTINGS, anchors=[1])
    x, ref = out
    assert x.complete and ref.complete
    assert len(ref.times_ms) == len(x.times_ms)
    assert Drifting.calls.count("ref") == len(ref.times_ms) + 1  # and one warm-up call


def test_remeasure_passes_time_the_anchor_again_and_keep_all_its_runs():
    got: dict[int, object] = {}
    order: list[int] = []

    def on_result(i, t):
        got[i] = t
        order.append(i)

    out = measure_group([Drifting("noisy", 2.0, noisy=True), Drifting("ref", 1.0)], SETTINGS,
                        on_result=on_result, anchors=[1])
    noisy, ref = out
    assert noisy.attempts == 2  # re-measured once
    assert ref.attempts == 2 and len(ref.times_ms) > len(noisy.times_ms)
    assert order[-1] == 1  # the anchor's result comes last, with every pass's runs
    # every kept run of the noisy record has an anchor run beside it
    gaps = [min(abs(np.array(ref.stamps) - s)) for s in noisy.stamps]
    assert max(gaps) < MAX_GAP_S


def test_paired_ratio_cancels_the_drift_that_the_plain_statistic_keeps():
    out = time_interleaved([Drifting("x", 3.0), Drifting("ref", 1.0)], SETTINGS, anchors=[1])
    x, ref = out
    ratio = paired_ratio(x.times_ms, x.stamps, ref.times_ms, ref.stamps)
    assert ratio == pytest.approx(3.0, rel=0.35)
    # with the speed steady over a few runs at a time, exactly
    stamps = np.arange(12.0)
    speed = np.repeat([1.0, 2.0, 1.5], 4)
    ran = [4, 5, 6, 7, 8]  # x ran in the slow spell only
    got = paired_ratio(3 * speed[ran], stamps[ran], speed, stamps + 0.1)
    assert got == pytest.approx(3.0)
    assert min(3 * speed[ran]) / min(speed) == pytest.approx(4.5)  # as timed


def test_paired_ratio_needs_stamps_and_close_reference_runs():
    assert paired_ratio([1.0, 2.0], (), [1.0], [0.0]) is None
    assert paired_ratio([1.0], [0.0], [1.0], ()) is None
    assert paired_ratio([1.0], [0.0], [1.0], [MAX_GAP_S * 3]) is None


def _rec(width, kv, times, stamps, group="g1", phase="prefill"):
    return {"spec": {"target": "layer", "phase": phase, "batch": 1, "tokens": 128,
                     "context": 0, "dtype": "fp32", "backend": "torch", "device": "cpu",
                     "threads": 2, "arch": "a", "width": width, "kv_heads": kv,
                     "subnet": None},
            "times_ms": list(times), "median_ms": float(np.median(times)),
            "stamps": list(stamps), "group": group}


def test_layer_figures_are_read_against_their_groups_reference():
    stamps = [0.0, 1.0, 2.0, 3.0, 4.0]
    speed = np.array([1.0, 1.9, 2.0, 1.8, 1.0])  # the machine slowed mid-group
    ref = _rec(1536, 3, 10 * speed, stamps)
    # a narrower layer whose runs fell in the slow spell only (timed in another part of it)
    slow_only = _rec(768, 1, 4 * np.array([1.9, 2.0, 1.8]), [1.0, 2.0, 3.0])
    anchors = group_anchors([ref, slow_only])
    assert anchors["g1"] is ref
    assert figure_ms(ref, "min", anchors) == pytest.approx(10.0)
    assert figure_ms(slow_only, "min", anchors) == pytest.approx(4.0)  # not 7.2 as timed
    assert figure_ms(slow_only, "min", {}) == pytest.approx(7.2)
    # a record of another group, or one without stamps, keeps its plain statistic
    other = _rec(768, 1, [5.0, 6.0, 7.0], [1.0, 2.0, 3.0], group="g2")
    assert figure_ms(other, "median", anchors) == pytest.approx(6.0)


def test_a_subnet_record_is_read_run_by_run_against_the_reference_beside_it():
    stamps = [0.0, 1.0, 2.0, 3.0]
    speed = np.array([1.0, 2.0, 1.0, 2.0])
    rec = {"spec": {**_rec(0, 0, [1], [0])["spec"], "target": "subnet", "width": None,
                    "kv_heads": None, "subnet": "{}"},
           "times_ms": list(50 * speed), "median_ms": float(np.median(50 * speed)),
           "stamps": stamps,
           "reference": {"width": 1536, "kv_heads": 3, "times_ms": list(10 * speed),
                         "stamps": stamps}}
    value, scale = rescaled_ms(rec, "median", Footing({("prefill@128", 1536, 3): 10.0}))
    assert value == pytest.approx(50.0)  # 5 reference layers' worth, at the profile's speed
    assert scale == pytest.approx(50.0 / 75.0)


def test_a_record_that_only_drifted_with_the_machine_is_not_noisy_as_read():
    from hwnas.profilers.footing import noisy_as_read

    stamps = np.arange(8.0)
    speed = np.array([1.0, 1.0, 1.5, 1.5, 2.0, 2.0, 1.0, 1.0])
    ref = _rec(1536, 3, 10 * speed, stamps + 0.1)
    x = {**_rec(768, 1, 4 * speed, stamps), "noisy": True, "noise_threshold": 0.1}
    anchors = group_anchors([ref, x])
    assert not noisy_as_read(x, anchors)  # the spread was the machine's, not the record's
    assert noisy_as_read(x, {})  # as timed, without a reference: as the profiler flagged it
    jumpy = {**_rec(768, 1, 4 * speed * np.array([1, 1.5] * 4), stamps), "noisy": True,
             "noise_threshold": 0.1}
    assert noisy_as_read(jumpy, group_anchors([ref, jumpy]))
