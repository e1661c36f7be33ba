"""Interference awareness: the machine's readings, waiting for quiet, refusing, and every
record carrying its readings; `measure` marking figures read from the store."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import fake_profile_yaml, tiny_config

from hwnas.hw_profiles import parse_profile
from hwnas.hw_profiles.schema import InterferenceSettings
from hwnas.profilers import profile_layers
from hwnas.profilers.interference import BusyMachine, MachineLoad, Quiet, Snapshot, read_proc
from hwnas.profilers.measurement import Measurement
from hwnas.profilers.shape import ModelShape
from hwnas.store import Store


class FakeMachine:
    """Snapshots of a machine whose other processes use `others[i]` cores during the i-th
    probe (two reads; the last value repeats, also while a group is timed). Its clock is the
    real one plus what `sleep` skipped."""

    def __init__(self, others: list[float]) -> None:
        self.others, self.skipped, self.busy, self.reads = others, 0.0, 0.0, 0
        self.last = time.monotonic()

    def _now(self) -> float:
        return time.monotonic() + self.skipped

    def _rate(self) -> float:
        return self.others[min(self.reads // 2, len(self.others) - 1)]

    def sleep(self, s: float) -> None:
        self.skipped += s

    def read(self) -> Snapshot:
        now = self._now()
        self.busy += self._rate() * (now - self.last)
        self.last = now
        self.reads += 1
        return Snapshot(now, self.busy, 2 * now, 0.0, 0.0, 1, 0.0)




def settings(**kw) -> InterferenceSettings:
    base = dict(probe_s=0.5, max_others_cores=0.3, max_wait_s=20.0, retry_s=5.0)
    base.update(kw)
    return InterferenceSettings(**base)


def test_load_between_subtracts_our_own_cpu_time():
    a = Snapshot(at=0.0, busy_s=10.0, total_s=100.0, steal_s=1.0, self_s=2.0, running=3,
                 load1=0.5)
    b = Snapshot(at=2.0, busy_s=14.0, total_s=104.0, steal_s=1.4, self_s=5.0, running=3,
                 load1=0.7)
    load = MachineLoad.between(a, b)
    assert load.others_cores == pytest.approx(0.5)  # 4 s busy, 3 of them ours, over 2 s
    assert load.steal == pytest.approx(0.1) and load.runnable == 2
    d = load.to_dict(settings())
    assert d["busy"] and "0.50 cores" in d["reasons"][0]
    quiet_enough = settings(max_others_cores=1.0, max_others_cores_timing=1.0, max_steal=0.2)
    assert not load.to_dict(quiet_enough)["busy"]
    # while we time on every core, other work shows less: its own (lower) limit applies
    idle_only = settings(max_others_cores=1.0, max_others_cores_timing=0.1, max_steal=0.2)
    assert not load.reasons(idle_only) and load.to_dict(idle_only)["busy"]
    assert "while timing" in load.to_dict(idle_only)["reasons"][0]


def test_real_readings_see_another_busy_process():
    """The real /proc counters: a busy child process shows as about one other core."""
    quiet = Quiet(settings(probe_s=1.0))
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt=time.time()\nwhile time.time()-t<4: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        busy = quiet.probe()
    finally:
        child.wait()
    assert busy.others_cores > 0.6, busy
    assert busy.reasons(quiet.settings)
    snap = read_proc()
    assert snap.total_s > 0 and snap.self_s > 0


def test_quiet_waits_until_the_machine_is_quiet():
    m = FakeMachine([1.0, 1.0, 0.0])
    said: list[str] = []
    q = Quiet(settings(), say=said.append, reader=m.read, sleep=m.sleep)
    load = q.before_group("timing prefill@16")
    assert load is not None and not load.reasons(q.settings)
    assert len(said) == 2 and "1.00 cores" in said[0] and "waiting" in said[0]
    assert q.waited_s == pytest.approx(2 * (5.0 + 0.5))


def test_quiet_refuses_after_its_longest_wait():
    m = FakeMachine([1.5])
    q = Quiet(settings(on_busy="refuse", max_wait_s=12.0), reader=m.read, sleep=m.sleep)
    with pytest.raises(BusyMachine, match=r"stayed busy for \d+ s before timing x.*--on-busy "
                                          r"proceed"):
        q.before_group("timing x")
    assert q.waited_s >= 12.0 and q.waited_s < 12.0 + 5.5


def test_quiet_proceed_does_not_wait_and_wait_goes_on_flagged():
    m = FakeMachine([1.5])
    q = Quiet(settings(on_busy="proceed"), reader=m.read, sleep=m.sleep)
    assert q.before_group("x").reasons(q.settings) and q.waited_s == 0
    said: list[str] = []
    m2 = FakeMachine([1.5])
    q2 = Quiet(settings(max_wait_s=10.0), say=said.append, reader=m2.read, sleep=m2.sleep)
    assert q2.before_group("x").reasons(q2.settings)  # still busy: goes on
    assert "flagged busy" in said[-1]


def _shape() -> ModelShape:
    return ModelShape.from_config(tiny_config(layers=3), name="tiny")


def test_profile_records_carry_their_readings_and_busy_flag(tmp_path):
    hw = parse_profile(fake_profile_yaml(interference={"probe_s": 0.5, "on_busy": "proceed"}))
    m = FakeMachine([2.0])  # always busy
    store = Store(tmp_path / "s.sqlite")
    summary = profile_layers(hw, _shape(), store,
                             quiet=Quiet(hw.interference, reader=m.read, sleep=m.sleep))
    assert summary.measured > 0 and summary.busy == summary.measured
    rec = store.measurements(kind="layer")[0]
    assert rec["busy"] and rec["interference"]["others_cores"] > 1.0
    assert Measurement.from_dict(rec).busy and rec["measured_at"] > 0
    from hwnas.predictors.data import load_profile_data

    data = load_profile_data(store, hw.name, _shape().arch.key(), "tiny")
    assert data.busy_layers == 1.0 and data.busy_subnets == 0.0  # what reports warn about

    quiet_store = Store(tmp_path / "q.sqlite")
    calm = FakeMachine([0.0])
    s2 = profile_layers(hw, _shape(), quiet_store,
                        quiet=Quiet(hw.interference, reader=calm.read, sleep=calm.sleep))
    assert s2.busy == 0
    assert not any(r["busy"] for r in quiet_store.measurements())
    assert all("others_cores" in r["interference"] for r in quiet_store.measurements())


def test_profile_refuses_on_a_busy_machine_and_keeps_nothing_half_done(tmp_path):
    hw = parse_profile(fake_profile_yaml(interference={"probe_s": 0.5, "on_busy": "refuse",
                                                       "max_wait_s": 10}))
    m = FakeMachine([2.0])
    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(BusyMachine):
        profile_layers(hw, _shape(), store,
                       quiet=Quiet(hw.interference, reader=m.read, sleep=m.sleep))
    assert store.measurements() == []  # refused before the first group: a re-run does it all
    again = profile_layers(hw.model_copy(update={"interference": settings(probe_s=0)}),
                           _shape(), store)
    assert again.complete and again.measured == again.total


def test_cli_profile_refuses_beside_a_busy_process(tiny_model_dir, fake_profile, capsys):
    """A real busy process beside `hwnas profile --on-busy refuse --max-wait-s 0`: exit 75,
    the reason and the fix on stderr, nothing stored; with the process gone it profiles."""
    from hwnas.cli import main

    fake_profile("fake-cpu", interference={"probe_s": 0.5})
    args = ["profile", "--hw", "fake-cpu", "--model", str(tiny_model_dir), "--json"]
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt=time.time()\nwhile time.time()-t<5: pass"])
    try:
        time.sleep(0.5)
        rc = main([*args, "--on-busy", "refuse", "--max-wait-s", "0"])
    finally:
        child.wait()
    err = capsys.readouterr().err
    assert rc == 75 and "stayed busy" in err and "cores" in err and "--on-busy proceed" in err
    assert main([*args, "--on-busy", "proceed"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["complete"] and out["measured"] == out["total"] and out["already"] == 0


def test_cli_rejects_an_unknown_on_busy(tiny_model_dir, fake_profile, capsys):
    from hwnas.cli import main

    fake_profile("fake-cpu")
    assert main(["profile", "--hw", "fake-cpu", "--model", str(tiny_model_dir),
                 "--on-busy", "sometimes"]) == 2
    assert "--on-busy 'sometimes'" in capsys.readouterr().err


def test_measure_marks_figures_read_from_the_store(tmp_path, tiny_model_dir):
    from hwnas.profilers import measure_subnet
    from hwnas.supernet.supernet import Supernet

    sn = Supernet.load(str(tiny_model_dir))
    hw = parse_profile(fake_profile_yaml())
    store = Store(tmp_path / "s.sqlite")
    spec = sn.space.full()
    first = measure_subnet(hw, sn, spec, store=store)
    assert not any(first.cached) and not first.from_store
    again = measure_subnet(hw, sn, spec, store=store)
    assert again.from_store and again.latency_ms == first.latency_ms
    d = again.to_dict()
    assert all(d["cached"].values()) and all(v.endswith("UTC") for v in d["measured_at"].values())
    fresh = measure_subnet(hw, sn, spec)  # no store: timed now
    assert not any(fresh.cached)


def test_cli_measure_says_when_a_figure_comes_from_the_store(tiny_model_dir, fake_profile,
                                                             capsys):
    from hwnas.cli import main

    fake_profile("fake-cpu")
    full = json.dumps({"layers": [0, 1, 2, 3], "intermediate_size": [128] * 4,
                       "kv_heads": [2] * 4})
    args = ["measure", "--hw", "fake-cpu", "--model", str(tiny_model_dir), "--subnet", full]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "stored" not in first.out
    assert main(args) == 0
    again = capsys.readouterr()
    assert "stored 20" in again.out and "--no-store" in again.err  # "stored 2026-..." UTC
    assert main([*args, "--no-store", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert not any(d["cached"].values()) and set(d["busy"]) == set(d["cached"])
