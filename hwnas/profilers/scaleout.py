"""Profiling as executor jobs: each workload group (every layer variant, timed interleaved) is
one timing job, run by a worker of the profile's hardware; whole-subnet timing likewise.

A timing job asks for the worker's whole device plus the resource named after the hardware
profile (`hwnas.executors.Job.resources`), so it runs only where that hardware is and with
nothing beside it. The worker times against a `RecordingStore`; its records come back with
the result and the driver alone writes them (keys are the hash of spec + fingerprint +
protocol version, so a group that ran twice, its worker having died, is recorded once). A
first small job asks a worker for its fingerprint, so the driver skips exactly what the store
holds, as the in-process profiler does; a resumed run measures only what is missing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from hwnas.executors import Executor, Job, Outcome
from hwnas.hw_profiles import HardwareProfile, check_pinned, load_profile
from hwnas.profilers.backends import Backend, backend_for, machine_fingerprint
from hwnas.profilers.footing import Footing
from hwnas.profilers.interference import quiet_for
from hwnas.profilers.jobs import Job as TimedJob
from hwnas.profilers.jobs import base_spec, plan
from hwnas.profilers.runner import ProfileSummary, _Context, _run_group
from hwnas.profilers.shape import ModelShape
from hwnas.profilers.subnet import SubnetLatency, measure_subnets
from hwnas.progress import Progress, ProgressEvent
from hwnas.store import Record, Storage
from hwnas.store.recording import RecordingStore, Write, replay
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SubnetSpec


@dataclass(frozen=True)
class Probe:
    """What a worker of the profile's hardware says about itself."""

    fingerprint: dict[str, object]
    key: str  # the fingerprint key that measurement keys hash
    mismatch: tuple[str, ...] = ()
    host: str = ""


@dataclass(frozen=True)
class GroupResult:
    writes: tuple[Write, ...]
    measured: int = 0
    noisy: int = 0
    remeasured: int = 0
    failed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    missing: int = 0
    busy: int = 0
    waited_s: float = 0.0


def _backend(hw: HardwareProfile, backend: Backend | None) -> Backend:
    return backend if backend is not None else backend_for(hw)


def probe(hw: HardwareProfile, backend: Backend | None, force: bool) -> Probe:
    """Job: this worker's fingerprint (refused, unless `force`, where the profile is pinned to
    other hardware)."""
    import socket

    b = _backend(hw, backend)
    fp = machine_fingerprint(hw, b)
    diffs = check_pinned(hw.name, hw.fingerprint, fp, force)
    return Probe(fp.to_dict(), fp.key(b.libraries), tuple(diffs), socket.gethostname())


def probe_job(hw: HardwareProfile, backend: Backend | None = None,
              force: bool = False) -> Job[Probe]:
    return Job(f"probe-{hw.name}", probe, (hw, backend, force), kind="timing", hw=hw.name)


def fingerprint_key(executor: Executor, hw: HardwareProfile, backend: Backend | None = None,
                    force: bool = False) -> Probe:
    out = executor.map([probe_job(hw, backend, force)])[0]
    if out.value is None:
        from hwnas.errors import HwnasError

        reason = out.failure.reason if out.failure else "no value"
        raise HwnasError(f"hardware profile '{hw.name}': no worker could read its "
                         f"fingerprint ({reason})")
    return out.value


def time_group(hw: HardwareProfile, shape: ModelShape, group: list[TimedJob],
               backend: Backend | None, force: bool, soft_s: float | None,
               deadline_wall: float | None) -> GroupResult:
    """Job: time one workload group interleaved, on this worker, into a recording store."""
    b = _backend(hw, backend)
    fp = machine_fingerprint(hw, b)
    check_pinned(hw.name, hw.fingerprint, fp, force)
    rec = RecordingStore()
    summary = ProfileSummary(hw=hw.name, model=shape.name, arch=shape.arch.key(),
                             total=len(group))
    now = time.monotonic()
    deadline = None if deadline_wall is None else now + (deadline_wall - time.time())
    soft = None if soft_s is None else now + soft_s
    if soft is not None and deadline is not None:
        soft = min(soft, deadline)
    quiet = quiet_for(hw.interference)
    ctx = _Context(hw, shape, rec, b, fp.to_dict(), fp.key(b.libraries), summary, None,
                   deadline, quiet, cache_bytes=b.cache_bytes(hw))
    b.setup(hw)
    _run_group(ctx, group, soft)
    return GroupResult(tuple(rec.writes), summary.measured, summary.noisy, summary.remeasured,
                       tuple(summary.failed), tuple(summary.errors), summary.missing,
                       summary.busy, round(quiet.waited_s, 1))


def _group_key(hw: HardwareProfile, fp_key: str, group: list[TimedJob]) -> str:
    keys = sorted(j.spec.key(fp_key) for j in group)
    return "group-" + hashlib.sha256("\n".join([hw.name, *keys]).encode()).hexdigest()[:24]


def profile_layers_on(executor: Executor, hw: HardwareProfile | str, shape: ModelShape,
                      store: Storage, budget_s: float | None = None,
                      progress: Progress | None = None, force: bool = False,
                      backend: Backend | None = None) -> ProfileSummary:
    """`hwnas.profilers.profile_layers` with each workload group a timing job on `executor`;
    the same plan, keys, records and summary."""
    start = time.monotonic()
    hw = load_profile(hw) if isinstance(hw, str) else hw
    arch = shape.arch
    groups = plan(hw, arch, shape.space)
    from hwnas.profilers.programs import check_positions
    for group in groups:
        check_positions(shape.config, group[0].spec, f"hardware profile '{hw.name}'")
    pr = fingerprint_key(executor, hw, backend, force)
    summary = ProfileSummary(hw=hw.name, model=shape.name, arch=arch.key(), budget_s=budget_s,
                             fingerprint_mismatch=list(pr.mismatch))
    have = store.measurement_keys(hw=hw.name, model=arch.key())
    todo = [[j for j in g if j.spec.key(pr.key) not in have] for g in groups]
    summary.total = sum(len(g) for g in groups)
    summary.already = summary.total - sum(len(g) for g in todo)
    pending = [g for g in todo if g]
    deadline_wall = None if budget_s is None else time.time() + budget_s
    soft_s = None if budget_s is None or not pending else budget_s / len(pending)
    jobs = [Job(_group_key(hw, pr.key, g), time_group,
                (hw, shape, g, backend, force, soft_s, deadline_wall), kind="timing",
                hw=hw.name) for g in pending]
    names = {j.key: g[0].workload.name for j, g in zip(jobs, pending, strict=True)}
    sizes = {j.key: len(g) for j, g in zip(jobs, pending, strict=True)}
    done = 0

    def record(out: Outcome[GroupResult]) -> None:
        nonlocal done
        r = out.value
        if r is None:
            reason = out.failure.reason if out.failure else "no result"
            summary.errors.append(f"group {names[out.key]}: {reason}")
        else:
            replay(list(r.writes), store)
            summary.measured += r.measured
            summary.noisy += r.noisy
            summary.remeasured += r.remeasured
            summary.failed.extend(r.failed)
            summary.errors.extend(r.errors)
            summary.missing += r.missing
            summary.busy += r.busy
            summary.waited_s = round(summary.waited_s + r.waited_s, 1)
        done += sizes[out.key]
        if progress is not None:
            progress(ProgressEvent("profile", done, summary.total - summary.already,
                                   f"group {names[out.key]}"))

    if progress is not None:
        progress(ProgressEvent("profile", 0, summary.total - summary.already, "starting"))
    executor.map(jobs, record)
    summary.elapsed_s = round(time.monotonic() - start, 3)
    return summary


# ---- whole subnets (the search's measured latency) ------------------------------------------
@dataclass(frozen=True)
class SubnetTiming:
    latencies: tuple[SubnetLatency, ...]
    writes: tuple[Write, ...] = field(default=())


def time_subnets(hw: HardwareProfile, model: str, dtype: str, specs: list[SubnetSpec],
                 workloads_: str, known: dict[str, Record], fresh: bool = False,
                 lock: str | None = None, force: bool = False,
                 backend: Backend | None = None,
                 footing: Footing | None = None) -> SubnetTiming:
    """Job: `measure_subnets` on this worker (the supernet loaded by name, once per process),
    holding the timing lock `lock` (`--timing-lock`) if given. Records the driver already has
    (`known`) are reused and new ones come back as writes; `fresh`: all timed anew, together,
    and not stored (the final re-measurement). `footing`: the driver's layer-profile
    reference figures (`hwnas.profilers.footing`)."""
    from hwnas.profilers.lock import timing_lock
    from hwnas.supernet.cached import loaded_supernet

    sn = loaded_supernet(model, dtype)
    rec = RecordingStore(known=dict(known))
    with timing_lock(lock):
        lats = measure_subnets(hw, sn, specs, store=None if fresh else rec,
                               workloads_=workloads_, force=force, backend=backend,
                               footing=footing)
    return SubnetTiming(tuple(lats), tuple(rec.writes))


def subnet_keys(hw: HardwareProfile, arch: ArchInfo, specs: list[SubnetSpec],
                workloads_: str, fp_key: str) -> list[str]:
    """The store keys `measure_subnets` reads and writes for `specs` on a machine whose
    fingerprint key is `fp_key`."""
    from hwnas.profilers.subnet import _chosen

    return [base_spec(hw, arch, "subnet", w, subnet=s.to_json()).key(fp_key)
            for s in specs for w in _chosen(hw, workloads_)]
