"""The adaptive, interleaved timer.

Callers hand it runnables (each times ONE call and returns milliseconds, synchronising as its
backend requires: wall clock on CPUs, CUDA events on GPUs). The timer

1. warms each runnable up (`warmup_runs` untimed calls) and sizes its block (how many calls
   fill `block_s`, so short calls are not dominated by switching between configurations);
2. runs rounds: in each round every unfinished runnable runs one block, so configurations are
   interleaved and a slow drift of the machine spreads over all of them instead of biasing
   one;
3. finishes a runnable when it has `min_runs` times and IQR/median is under `target_rel_iqr`,
   or when it reaches `max_runs` or has spent `max_time_s` of its own calls;
4. at the soft deadline (a group's share of a budget) finishes every runnable that has at
   least `MIN_SAMPLES` times with what it has (its noisy flag then tells the truth about it);
5. stops everything at the hard deadline (what is unfinished is reported, never stored half
   done).

Noisy results (IQR/median above `noise_threshold`) are re-measured up to `max_remeasure`
times by `measure_group`, which keeps the steadiest attempt and counts the attempts; it never
drops a result silently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hwnas.hw_profiles.schema import TimerSettings


class Runnable(Protocol):
    def time_once(self) -> float:
        """Run once; return the elapsed milliseconds of that call alone."""
        ...


class PerUnit:
    """A runnable whose one call runs `units` copies of the timed thing, read per copy."""

    def __init__(self, runnable: Runnable, units: int) -> None:
        self.runnable, self.units = runnable, max(1, units)

    def time_once(self) -> float:
        return self.runnable.time_once() / self.units


def rel_iqr(times: Sequence[float]) -> float:
    if len(times) < 2:
        return math.inf
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return float((q3 - q1) / max(med, 1e-12))


@dataclass
class _State:
    runnable: Runnable
    times: list[float] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)
    spent_s: float = 0.0
    block: int = 1
    done: bool = False


@dataclass(frozen=True)
class Timed:
    """The outcome for one runnable: its times, or why it has none."""

    times_ms: tuple[float, ...]
    complete: bool  # False: the deadline came first
    attempts: int = 1
    stamps: tuple[float, ...] = ()  # per time: `time.monotonic()` when its call started, so
    # that runs of different runnables can be paired by when they ran (`footing`)

    @property
    def rel_iqr(self) -> float:
        return rel_iqr(self.times_ms)


MIN_SAMPLES = 3


def _past(t: float | None) -> bool:
    return t is not None and time.monotonic() > t


def _finished(st: _State, s: TimerSettings) -> bool:
    n = len(st.times)
    if n >= s.max_runs or st.spent_s >= s.max_time_s:
        return n >= MIN_SAMPLES  # even a very slow call gets a spread
    return n >= s.min_runs and rel_iqr(st.times) <= s.target_rel_iqr


def _warm_up(st: _State, s: TimerSettings, deadline: float | None) -> None:
    first = st.runnable.time_once()
    for _ in range(max(s.warmup_runs - 1, 0)):
        if _past(deadline):
            break
        first = min(first, st.runnable.time_once())
    st.block = max(1, min(int(s.block_s * 1000.0 / max(first, 1e-6)), s.max_runs))


def time_interleaved(runnables: Sequence[Runnable], settings: TimerSettings,
                     deadline: float | None = None,
                     on_done: Callable[[int, Timed], None] | None = None,
                     soft_deadline: float | None = None,
                     anchors: Sequence[int] = ()) -> list[Timed]:
    """Time every runnable, interleaved, adaptively; deadlines are `time.monotonic()` values.
    `anchors` run every round for as long as any other runnable does (so every run has anchor
    runs beside it), and finish with the last of them."""
    states = [_State(r) for r in runnables]
    for st in states:
        if _past(deadline):
            break
        _warm_up(st, settings, deadline)
    others = [i for i in range(len(states)) if i not in anchors] or list(range(len(states)))
    while True:
        active = [i for i, st in enumerate(states) if not st.done]
        if not any(i in active for i in others) or _past(deadline):
            break
        soft = _past(soft_deadline)
        for i in active:
            if _past(deadline):  # checked per block, so a budget is overshot by one call
                break
            st = states[i]
            for _ in range(1 if soft else st.block):
                st.stamps.append(time.monotonic())
                ms = st.runnable.time_once()
                st.times.append(ms)
                st.spent_s += ms / 1000.0
            if i in anchors and i not in others:
                continue
            if _finished(st, settings) or (soft and len(st.times) >= MIN_SAMPLES):
                st.done = True
                if on_done is not None:
                    on_done(i, Timed(tuple(st.times), True, 1, tuple(st.stamps)))
    for i in anchors:
        st = states[i]
        if not st.done and len(st.times) >= MIN_SAMPLES and i not in others:
            st.done = True
            if on_done is not None:
                on_done(i, Timed(tuple(st.times), True, 1, tuple(st.stamps)))
    return [Timed(tuple(st.times), st.done, 1, tuple(st.stamps)) for st in states]


def measure_group(runnables: Sequence[Runnable], settings: TimerSettings,
                  deadline: float | None = None,
                  on_result: Callable[[int, Timed], None] | None = None,
                  soft_deadline: float | None = None,
                  anchors: Sequence[int] = ()) -> list[Timed]:
    """`time_interleaved`, then re-measure the noisy results (interleaved among themselves).

    `on_result` is called once per runnable as soon as its final result is known: steady
    results right away, noisy ones after their re-measurements (the steadiest attempt, with
    `attempts` counting every try). Unfinished runnables (deadline) get no call.

    `anchors`: runnables that every re-measurement pass times again beside the noisy ones
    (their runs of every pass are kept, and their results come last), so that each run of the
    group has runs of an anchor close by in time to be read against
    (`hwnas.profilers.footing`)."""
    from hwnas.profilers.lock import timing_lock

    with timing_lock():  # $HWNAS_TIMING_LOCK, when set
        return _measure_group(runnables, settings, deadline, on_result, soft_deadline,
                              list(anchors))


def _measure_group(runnables: Sequence[Runnable], settings: TimerSettings,
                   deadline: float | None, on_result: Callable[[int, Timed], None] | None,
                   soft_deadline: float | None, anchors: list[int]) -> list[Timed]:
    results: list[Timed | None] = [None] * len(runnables)

    def first_pass(i: int, t: Timed) -> None:
        if i not in anchors and (t.rel_iqr <= settings.noise_threshold
                            or settings.max_remeasure == 0):
            results[i] = t
            if on_result is not None:
                on_result(i, t)

    passes = time_interleaved(runnables, settings, deadline, first_pass, soft_deadline, anchors)
    best = {i: t for i, t in enumerate(passes) if results[i] is None and t.complete
            and i not in anchors}
    kept = {a: passes[a] for a in anchors if passes[a].complete}
    for attempt in range(2, settings.max_remeasure + 2):
        noisy = [i for i, t in best.items() if t.rel_iqr > settings.noise_threshold]
        if not noisy or _past(deadline) or _past(soft_deadline):
            break
        order = noisy + list(kept)
        again = time_interleaved([runnables[i] for i in order], settings, deadline,
                                 soft_deadline=soft_deadline,
                                 anchors=range(len(noisy), len(order)))
        for i, t in zip(order, again, strict=True):
            if i in kept:  # an anchor: every pass's runs are kept
                k = kept[i]
                kept[i] = Timed(k.times_ms + t.times_ms, True, k.attempts + 1,
                                k.stamps + t.stamps)
                continue
            better = t if t.complete and t.rel_iqr < best[i].rel_iqr else best[i]
            best[i] = Timed(better.times_ms, True, attempt, better.stamps)
    best.update(kept)
    for i, t in sorted(best.items(), key=lambda it: it[0] in kept):
        results[i] = t
        if on_result is not None:
            on_result(i, t)
    return [r if r is not None else passes[i] for i, r in enumerate(results)]
