"""`RealEvaluator`'s work as executor jobs: accuracy as evaluation jobs (one per subnet and
task, `hwnas.evaluation.scaleout`), measured latency as timing jobs (one per subnet, or, for
the final re-measurement, one for all of them interleaved), each alone on a worker of the
profile's hardware (`hwnas.profilers.scaleout`). The driver writes every record; with the
local executor the same jobs run in this process, so both give the same records.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hwnas.executors import Failure, Job, Outcome
from hwnas.profilers.lock import timing_lock
from hwnas.progress import Progress, ProgressEvent
from hwnas.search.evaluators import Measured
from hwnas.supernet.space import SearchSpace, SubnetSpec

if TYPE_CHECKING:
    from hwnas.evaluation import EvalTarget
    from hwnas.executors import Executor
    from hwnas.hw_profiles import HardwareProfile
    from hwnas.profilers.footing import Footing
    from hwnas.profilers.scaleout import SubnetTiming
    from hwnas.profilers.subnet import SubnetLatency
    from hwnas.search.config import SearchConfig
    from hwnas.search.quality import TaskPlan
    from hwnas.store import Storage
    from hwnas.supernet.supernet import Supernet


class RealEvaluator(Protocol):
    """What the jobs need of `hwnas.search.real.RealEvaluator`."""

    sn: Supernet
    hw: HardwareProfile
    config: SearchConfig
    store: Storage
    executor: Executor
    lock: str | Path | None
    space: SearchSpace
    plan: TaskPlan

    def exact(self, spec: SubnetSpec) -> dict[str, float]: ...
    def _latency(self, spec: SubnetSpec) -> tuple[float, dict[str, object]]: ...

Quality = tuple[dict[str, float], dict[str, Any]]
Latency = tuple[float, dict[str, Any]]


def _failure(f: Failure | None) -> Failure:
    return f or Failure("error", "NoValue", "the job returned nothing")


def _target(ev: RealEvaluator, spec: SubnetSpec | None) -> EvalTarget:
    """The subnet of the driver's supernet; for workers elsewhere, one they load by name
    (same identity, so the same cache keys and records)."""
    from hwnas.evaluation import from_supernet
    from hwnas.evaluation.scaleout import named_target

    repair = ev.config.repair  # from_supernet leaves the full model (spec None) unrepaired
    local = from_supernet(ev.sn, spec, repair)
    if ev.executor.in_process:
        return local
    return named_target(ev.config.model, None if spec is None else ev.sn.validate(spec),
                        ev.hw.dtype, local, repair)


def quality_batch(ev: RealEvaluator, specs: list[SubnetSpec | None], limit: int | None,
                  final: bool = False) -> list[Quality | Failure]:
    """Quality of each on the run's search tasks (`final`: its re-measurement tasks)."""
    from hwnas.evaluation.scaleout import evaluate_many
    from hwnas.search.quality import ITEM_SEED, summarise

    seed = ITEM_SEED if limit is not None else None
    tasks = ev.plan.final if final else ev.plan.search
    got = evaluate_many([_target(ev, s) for s in specs], list(tasks), ev.executor,
                        limit=limit, seed=seed, store=ev.store)
    return [g if isinstance(g, Failure) else summarise(g) for g in got]


def _timing_key(hw: str, group: list[SubnetSpec], fresh: bool) -> str:
    ident = "\n".join([hw, "fresh" if fresh else "stored", *(s.key() for s in group)])
    return "subnet-timing-" + hashlib.sha256(ident.encode()).hexdigest()[:24]


def _measure_here(ev: RealEvaluator, group: list[SubnetSpec],
                  fresh: bool) -> list[SubnetLatency]:
    from hwnas.profilers import measure_subnets

    with timing_lock(ev.lock):
        return list(measure_subnets(ev.hw, ev.sn, group, store=None if fresh else ev.store,
                                    workloads_="primary", footing=footing(ev)))


def footing(ev: RealEvaluator) -> Footing:
    """The layer profile's reference figures, which put every timed figure on the footing of
    the profiling run (what the latency predictor stands for)."""
    from hwnas.profilers.footing import profile_reference

    return profile_reference(ev.store, ev.hw, ev.sn.arch.key())


def time_batch(ev: RealEvaluator, specs: list[SubnetSpec],
               fresh: bool = False) -> list[list[SubnetLatency] | Failure]:
    """Timing jobs, one per subnet (or, `fresh`, one for all of them interleaved and not
    from the store): each subnet group's `SubnetLatency` list, or its `Failure`."""
    groups = [list(specs)] if fresh else [[s] for s in specs]
    if ev.executor.in_process:
        jobs = [Job(_timing_key(ev.hw.name, g, fresh), _measure_here, (ev, g, fresh),
                    kind="timing", hw=ev.hw.name) for g in groups]
        return [o.value if o.value is not None else _failure(o.failure)
                for o in ev.executor.map(jobs)]
    from hwnas.profilers.scaleout import fingerprint_key, subnet_keys, time_subnets
    from hwnas.store.recording import replay

    fp_key = fingerprint_key(ev.executor, ev.hw).key
    lock = None if ev.lock is None else str(ev.lock)
    remote: list[Job[SubnetTiming]] = []
    ref = footing(ev)
    for g in groups:
        known = {}
        if not fresh:  # what the store holds is reused on the worker, as in-process
            for k in subnet_keys(ev.hw, ev.sn.arch, g, "primary", fp_key):
                rec = ev.store.get_measurement(k)
                if rec is not None:
                    known[k] = rec
        remote.append(Job(_timing_key(ev.hw.name, g, fresh), time_subnets,
                          (ev.hw, ev.config.model, ev.hw.dtype, g, "primary", known, fresh,
                           lock, False, None, ref), kind="timing", hw=ev.hw.name))

    def write(o: Outcome[SubnetTiming]) -> None:
        if o.value is not None:
            replay(list(o.value.writes), ev.store)

    return [list(o.value.latencies) if o.value is not None else _failure(o.failure)
            for o in ev.executor.map(remote, write)]


NO_LATENCY: Latency = (float("nan"), {"source": "none"})  # --latency none


def with_latency(values: dict[str, float], lat: Latency) -> dict[str, float]:
    return values if lat[1].get("source") == "none" else {**values, "latency_ms": lat[0]}


def _latency_of(lat: SubnetLatency) -> Latency:
    """The figure on the layer profile's footing (as timed where there is no profile), with
    what was timed and the machine's speed beside it."""
    return float(lat.comparable_ms), latency_detail(lat)


def latency_detail(lat: SubnetLatency) -> dict[str, Any]:
    return {"per_workload_ms": lat.per_workload, "primary": lat.primary,
            "source": "measured", "as_timed_ms": float(lat.latency_ms),
            "at_profile_speed": lat.profile_latency_ms is not None, "speed": lat.speed}


def evaluate_batch(ev: RealEvaluator, specs: list[SubnetSpec]) -> list[Measured | Failure]:
    """`RealEvaluator.evaluate` of each spec, as jobs: accuracy per (subnet, task), then
    measured latency per subnet (timing jobs, each alone on its device)."""
    quality = quality_batch(ev, list(specs), ev.config.limit)
    ok = [s for s, q in zip(specs, quality, strict=True) if not isinstance(q, Failure)]
    timed: dict[str, Latency | Failure] = {}
    if ev.config.latency == "measured":
        for s, t in zip(ok, time_batch(ev, ok), strict=True):
            timed[s.key()] = t if isinstance(t, Failure) else _latency_of(t[0])
    else:
        for s in ok:
            timed[s.key()] = NO_LATENCY if ev.config.latency == "none" else ev._latency(s)
    out: list[Measured | Failure] = []
    for s, q in zip(specs, quality, strict=True):
        lat = timed.get(s.key())
        if isinstance(q, Failure) or isinstance(lat, Failure) or lat is None:
            out.append(q if isinstance(q, Failure) else _failure(lat if isinstance(lat, Failure)
                                                                 else None))
            continue
        values, detail = q
        values = with_latency({**values, **ev.exact(s)}, lat)
        out.append(Measured(values, {"tasks": detail, "latency": lat[1],
                                     "limit": ev.config.limit}))
    return out


def full_model(ev: RealEvaluator) -> tuple[dict[str, float], Latency, dict[str, Any]]:
    """The full model's quality values, latency and per-task detail (the run's reference),
    through the executor."""
    from hwnas.errors import HwnasError

    full = ev.space.full()
    q = quality_batch(ev, [None], ev.config.limit)[0]
    lat: Latency | Failure
    if ev.config.latency == "measured":
        t = time_batch(ev, [full])[0]
        lat = t if isinstance(t, Failure) else _latency_of(t[0])
    else:
        lat = NO_LATENCY if ev.config.latency == "none" else ev._latency(full)
    for got in (q, lat):
        if isinstance(got, Failure):
            raise HwnasError(f"measuring the full model (the reference) failed ({got.reason})")
    assert not isinstance(q, Failure) and not isinstance(lat, Failure)
    return q[0], lat, q[1]


def remeasure(ev: RealEvaluator, specs: list[SubnetSpec | None],
              progress: Progress | None = None) -> list[Measured]:
    """`RealEvaluator.remeasure` as jobs: accuracy on `final_limit` items for all of them at
    once, then one timing job that times them all (the full model included) interleaved."""
    from hwnas.errors import HwnasError

    full = ev.space.full()
    if progress is not None:
        progress(ProgressEvent("remeasure", 0, len(specs), "accuracy"))
    quality = quality_batch(ev, specs, ev.config.final_limit, final=True)
    if progress is not None:
        progress(ProgressEvent("remeasure", 0, len(specs), "latency"))
    resolved = [full if s is None else s for s in specs]
    lats: list[SubnetLatency | None] | Failure = [None] * len(resolved)
    if ev.config.latency != "none":
        timed = time_batch(ev, resolved, fresh=True)[0]
        lats = timed if isinstance(timed, Failure) else list(timed)
    for q in [*quality, lats]:
        if isinstance(q, Failure):
            raise HwnasError(f"re-measuring the Pareto set failed ({q.reason}); resume the "
                             "run to try again")
    assert not isinstance(lats, Failure)
    out = []
    for s, q, lat in zip(resolved, quality, lats, strict=True):
        assert not isinstance(q, Failure)
        values, detail = q
        values = {**values, **ev.exact(s)}
        info: dict[str, Any] = {"tasks": detail, "limit": ev.config.final_limit,
                                "remeasured": True}
        if lat is not None:
            values["latency_ms"] = float(lat.comparable_ms)
            info["latency"] = {**latency_detail(lat), "interleaved_with": len(specs)}
        out.append(Measured(values, info))
    return out
