"""`profile_layers`: time every layer variant and the fixed parts at every workload, into the
store, resumably and within a budget.

Resume and crash safety come from the store: each record's key is the hash of its
`TimingSpec` + the machine's fingerprint key + the protocol version, every record is its own
commit, and a run skips every key already there, so after Ctrl-C or `kill -9` a re-run
measures only what is missing and never writes a duplicate.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from hwnas.hw_profiles import HardwareProfile, check_pinned, load_profile
from hwnas.profilers.backends import (
    Backend,
    BackendError,
    Telemetry,
    backend_for,
    machine_fingerprint,
)
from hwnas.profilers.interference import MachineLoad, Quiet, quiet_for
from hwnas.profilers.jobs import Job, plan
from hwnas.profilers.measurement import Measurement
from hwnas.profilers.shape import Shaped
from hwnas.profilers.timer import PerUnit, Timed, measure_group
from hwnas.progress import Progress, ProgressEvent
from hwnas.store import Storage

if TYPE_CHECKING:
    from torch import nn
    from transformers import PretrainedConfig

    from hwnas.profilers.programs import Program


@dataclass
class ProfileSummary:
    hw: str
    model: str
    arch: str
    total: int = 0
    already: int = 0
    measured: int = 0
    noisy: int = 0
    remeasured: int = 0
    failed: list[str] = field(default_factory=list)  # recorded failures (out of memory)
    errors: list[str] = field(default_factory=list)  # not recorded: retried on a re-run
    missing: int = 0  # left for a re-run (budget ran out)
    elapsed_s: float = 0.0
    budget_s: float | None = None
    fingerprint_mismatch: list[str] = field(default_factory=list)
    busy: int = 0  # records timed while other work used the machine beyond the limits
    waited_s: float = 0.0  # spent waiting for the machine to be quiet

    @property
    def complete(self) -> bool:
        return self.missing == 0 and not self.errors

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "complete": self.complete}


@dataclass
class _Context:
    hw: HardwareProfile
    sn: Shaped
    store: Storage
    backend: Backend
    fingerprint: dict[str, object]
    fp_key: str
    summary: ProfileSummary
    progress: Progress | None
    deadline: float | None
    quiet: Quiet
    layers: dict[tuple[int, int], list[nn.Module]] = field(default_factory=dict)
    done: int = 0
    cache_bytes: int = 0  # the device's last-level cache, for in-context layer chains


def profile_layers(hw: HardwareProfile | str, sn: Shaped, store: Storage,
                   budget_s: float | None = None, progress: Progress | None = None,
                   force: bool = False, backend: Backend | None = None,
                   quiet: Quiet | None = None) -> ProfileSummary:
    """Measure what the store lacks for (hw, sn's shape); stop within `budget_s` seconds.

    Before each workload group the machine is checked (`quiet`, default the profile's
    `interference` settings): busy, it waits, goes on flagged or raises `BusyMachine`
    (what was stored so far is kept)."""
    start = time.monotonic()
    hw = load_profile(hw) if isinstance(hw, str) else hw
    backend = backend or backend_for(hw)
    fp = machine_fingerprint(hw, backend)
    diffs = check_pinned(hw.name, hw.fingerprint, fp, force)
    fp_key = fp.key(backend.libraries)
    arch = sn.arch
    summary = ProfileSummary(hw=hw.name, model=sn.name, arch=arch.key(), budget_s=budget_s,
                             fingerprint_mismatch=diffs)
    groups = plan(hw, arch, sn.space)
    from hwnas.profilers.programs import check_positions
    for group in groups:
        check_positions(sn.config, group[0].spec, f"hardware profile '{hw.name}'")
    have = store.measurement_keys(hw=hw.name, model=arch.key())
    todo = [[j for j in g if j.spec.key(fp_key) not in have] for g in groups]
    summary.total = sum(len(g) for g in groups)
    summary.already = summary.total - sum(len(g) for g in todo)
    deadline = None if budget_s is None else start + budget_s
    ctx = _Context(hw, sn, store, backend, fp.to_dict(), fp_key, summary, progress, deadline,
                   quiet or quiet_for(hw.interference), cache_bytes=backend.cache_bytes(hw))
    waited_before = ctx.quiet.waited_s  # a process-wide Quiet may have waited already
    backend.setup(hw)
    _report(ctx, "starting")
    pending = [g for g in todo if g]
    for n, group in enumerate(pending):
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            summary.missing += len(group)
            continue
        # each remaining group gets an equal share of what is left of the budget
        soft = None if deadline is None else now + (deadline - now) / (len(pending) - n)
        try:
            _run_group(ctx, group, soft)
        finally:
            summary.waited_s = round(ctx.quiet.waited_s - waited_before, 1)
    summary.elapsed_s = round(time.monotonic() - start, 3)
    return summary


def _report(ctx: _Context, what: str) -> None:
    if ctx.progress is not None:
        ctx.progress(ProgressEvent("profile", ctx.done, ctx.summary.total - ctx.summary.already,
                                   what))


def _prepare(ctx: _Context, job: Job) -> PerUnit | None:
    """A runnable for the job (read per copy of a layer chain), or None when it failed
    (recorded or counted)."""
    try:
        program = _program(ctx, job)
        runnable = ctx.backend.prepare(program, ctx.hw)
        runnable.time_once()  # a program that cannot run fails here, not inside the timer
        return PerUnit(runnable, program.units)
    except BackendError as e:
        _failure(ctx, job, e)
    except Exception as e:  # a library's own error type (torch OOM, ORT, OpenVINO)
        _failure(ctx, job, e)
    return None


def _is_oom(e: BaseException) -> bool:
    from hwnas.profilers.backends import OutOfMemory
    return isinstance(e, OutOfMemory) or "out of memory" in str(e).lower() or \
        "OutOfMemory" in type(e).__name__


def _failure(ctx: _Context, job: Job, e: BaseException) -> None:
    label = f"{job.kind} {_label(job)}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    if _is_oom(e):  # deterministic for a shape: record it so a re-run does not retry it
        ctx.store.put_measurement(job.spec.key(ctx.fp_key), hw=ctx.hw.name,
                                  model=job.spec.arch, kind="failed", median_ms=None,
                                  noisy=False, record={"spec": job.spec.to_dict(),
                                                       "kind": job.kind, "error": "oom",
                                                       "message": label,
                                                       "fingerprint": ctx.fingerprint})
        ctx.summary.failed.append(label)
    else:
        ctx.summary.errors.append(label)
    ctx.done += 1
    _report(ctx, label)


def _label(job: Job) -> str:
    s = job.spec
    shape = f" w{s.width} kv{s.kv_heads}" if job.kind == "layer" else ""
    return f"{job.workload.name}{shape}"


def _program(ctx: _Context, job: Job) -> Program:
    from hwnas.profilers.backends.base import building

    with building(ctx.backend):
        return _build_program(ctx, job)


def _build_program(ctx: _Context, job: Job) -> Program:
    from hwnas.profilers import programs

    arch, config, spec = ctx.sn.arch, ctx.sn.config, job.spec
    if job.kind == "embed":
        return programs.embed_program(arch, config, spec)
    if job.kind == "head":
        return programs.head_program(arch, config, spec)
    key = (int(spec.width or 0), int(spec.kv_heads or 0))
    if key not in ctx.layers:
        ctx.layers[key] = programs.build_layer_chain(arch, _layer_config(ctx.sn, *key),
                                                     ctx.hw.dtype, ctx.cache_bytes,
                                                     ctx.hw.timer)
    return programs.layer_program(arch, _layer_config(ctx.sn, *key), ctx.layers[key], spec)


def _layer_config(sn: Shaped, width: int, kv_heads: int) -> PretrainedConfig:
    return sn.layer_config(width, kv_heads)


def _accounted(s: ProfileSummary) -> int:
    return s.measured + len(s.failed) + len(s.errors)


def _run_group(ctx: _Context, group: list[Job], soft_deadline: float | None) -> None:
    accounted = _accounted(ctx.summary)
    ready: list[tuple[Job, PerUnit]] = []
    for job in group:
        if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
            break
        _report(ctx, f"preparing {job.kind} {_label(job)}")
        runnable = _prepare(ctx, job)
        if runnable is not None:
            ready.append((job, runnable))
    ctx.quiet.before_group(f"timing {group[0].workload.name}",
                           None if ctx.progress is None else lambda msg: _report(ctx, msg))
    before = ctx.backend.telemetry(ctx.hw)
    _report(ctx, f"timing {group[0].workload.name} ({len(ready)} interleaved)")
    started = ctx.quiet.reader()

    group_id = uuid.uuid4().hex[:16]

    def on_result(i: int, timed: Timed) -> None:
        job, runnable = ready[i]
        load = MachineLoad.between(started, ctx.quiet.reader())
        _store(ctx, job, timed, before, runnable.units,
               dict(load.to_dict(ctx.hw.interference)), group_id)
        ctx.done += 1
        _report(ctx, f"{job.kind} {_label(job)}")

    measure_group([r for _, r in ready], ctx.hw.timer, ctx.deadline, on_result, soft_deadline,
                  _anchors(ctx, [j for j, _ in ready]))
    ctx.summary.missing += len(group) - (_accounted(ctx.summary) - accounted)


def _anchors(ctx: _Context, jobs: list[Job]) -> list[int]:
    """The group's reference layer (full width, every KV group): the runs of every other
    record are read against it (`hwnas.profilers.footing`)."""
    width, kv = max(ctx.sn.space.width_choices), max(ctx.sn.space.kv_choices)
    return [i for i, j in enumerate(jobs)
            if j.kind == "layer" and j.spec.width == width and j.spec.kv_heads == kv]


def _store(ctx: _Context, job: Job, timed: Timed, before: Telemetry, units: int,
           interference: dict[str, object], group: str) -> None:
    fingerprint = dict(ctx.fingerprint)
    after = ctx.backend.telemetry(ctx.hw)
    if before or after:
        fingerprint["telemetry"] = {"before": before, "after": after}
    m = Measurement(spec=job.spec, times_ms=timed.times_ms, fingerprint=fingerprint,
                    noise_threshold=ctx.hw.timer.noise_threshold,
                    remeasured=timed.attempts - 1, units=units, interference=interference,
                    measured_at=time.time(), stamps=timed.stamps, group=group)
    ctx.store.put_measurement(job.spec.key(ctx.fp_key), hw=ctx.hw.name, model=job.spec.arch,
                              kind=job.kind, median_ms=m.median_ms, noisy=m.noisy,
                              record=m.to_dict())
    ctx.summary.measured += 1
    ctx.summary.noisy += int(m.noisy)
    ctx.summary.remeasured += int(timed.attempts > 1)
    ctx.summary.busy += int(m.busy)
