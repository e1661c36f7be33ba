"""`measure_subnet`: time one whole subnet for real, at the profile's workloads, and compose
the primary metric from the measured prefill and decode steps.

The subnet is cut from the supernet (`sn.extract`) and run as a `SubnetStep` (its own
embedding, layers, norm and head, with explicit KV caches), so every backend runs the same
graph; its output equals the transformers model's logits (tests check this). Workloads are
timed interleaved; with a store, records are kept (kind "subnet") and reused.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from hwnas.hw_profiles import HardwareProfile, check_pinned, load_profile
from hwnas.hw_profiles.workload import Workload
from hwnas.profilers.backends import Backend, backend_for, machine_fingerprint
from hwnas.profilers.footing import Footing, profile_reference, rescaled_ms
from hwnas.profilers.interference import MachineLoad, Quiet, quiet_for
from hwnas.profilers.jobs import base_spec, workloads
from hwnas.profilers.measurement import Measurement, TimingSpec
from hwnas.profilers.timer import PerUnit, Runnable, Timed, measure_group
from hwnas.progress import Progress, ProgressEvent
from hwnas.store import Storage
from hwnas.supernet.space import SubnetSpec

if TYPE_CHECKING:
    from hwnas.hw_profiles import Fingerprint
    from hwnas.supernet.supernet import Supernet


class SubnetLatencyDict(TypedDict):
    """`SubnetLatency.to_dict()`: what `hwnas profile measure --json` prints."""

    hw: str
    subnet: str
    subnet_key: str
    latency_ms: float
    primary: str
    per_workload: dict[str, float]
    noisy: dict[str, bool]
    iqr_ms: dict[str, float]
    busy: dict[str, bool]
    cached: dict[str, bool]
    measured_at: dict[str, str]
    profile_latency_ms: float | None
    profile_per_workload: dict[str, float]
    speed: dict[str, float]


@dataclass(frozen=True)
class SubnetLatency:
    hw: str
    subnet: str  # canonical SubnetSpec JSON
    subnet_key: str
    latency_ms: float  # the profile's primary metric
    primary: str  # how latency_ms is composed
    per_workload: dict[str, float] = field(default_factory=dict)  # ms per workload (the
    # profile's timer.statistic of the runs)
    measurements: tuple[Measurement, ...] = ()
    cached: tuple[bool, ...] = ()  # per measurement: read back from the store, not timed now
    profile_per_workload: dict[str, float] = field(default_factory=dict)  # per workload on
    # the layer profile's footing (`footing`); empty without a layer profile in the store
    speed: dict[str, float] = field(default_factory=dict)  # per workload: how fast the
    # machine ran beside this record, relative to its layer-profiling run (1.0: as fast)
    profile_latency_ms: float | None = None  # the primary metric on the profile's footing:
    # what a prediction stands for

    @property
    def comparable_ms(self) -> float:
        """The figure to compare with predictions and other records: on the profile's
        footing when the store has the profile, else as timed."""
        return self.latency_ms if self.profile_latency_ms is None else self.profile_latency_ms

    @property
    def from_store(self) -> bool:
        """Every figure came from the store (an earlier measurement)."""
        return bool(self.cached) and all(self.cached)

    @property
    def busy(self) -> bool:
        return any(m.busy for m in self.measurements)

    def to_dict(self) -> SubnetLatencyDict:
        return {"hw": self.hw, "subnet": self.subnet, "subnet_key": self.subnet_key,
                "latency_ms": self.latency_ms, "primary": self.primary,
                "per_workload": self.per_workload,
                "noisy": {m_name(m): m.noisy for m in self.measurements},
                "iqr_ms": {m_name(m): m.iqr_ms for m in self.measurements},
                "busy": {m_name(m): m.busy for m in self.measurements},
                "cached": {m_name(m): c for m, c in zip(self.measurements, self.cached,
                                                        strict=True)},
                "measured_at": {m_name(m): when(m) for m in self.measurements},
                "profile_latency_ms": self.profile_latency_ms,
                "profile_per_workload": self.profile_per_workload, "speed": self.speed}


def when(m: Measurement) -> str:
    """The record's date and time (UTC), or "unknown" for records from before it was kept."""
    if not m.measured_at:
        return "unknown"
    import datetime as dt
    return dt.datetime.fromtimestamp(m.measured_at, dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")


def m_name(m: Measurement) -> str:
    s = m.spec
    return f"prefill@{s.tokens}" if s.phase == "prefill" else f"decode@{s.context}"


def measure_subnet(hw: HardwareProfile | str, sn: Supernet, spec: SubnetSpec,
                   store: Storage | None = None, workloads_: str = "all",
                   force: bool = False, backend: Backend | None = None,
                   quiet: Quiet | None = None,
                   footing: Footing | None = None) -> SubnetLatency:
    """Time `spec` cut from `sn` on `hw`. `workloads_`: "all" of the profile's workloads or
    only the two the "primary" metric needs."""
    return measure_subnets(hw, sn, [spec], store, workloads_, force, backend, quiet,
                           footing)[0]


def measure_subnets(hw: HardwareProfile | str, sn: Supernet, specs: list[SubnetSpec],
                    store: Storage | None = None, workloads_: str = "all",
                    force: bool = False, backend: Backend | None = None,
                    quiet: Quiet | None = None,
                    footing: Footing | None = None) -> list[SubnetLatency]:
    """Time several subnets in one interleaved group (round-robin, so that a slow spell of a
    shared machine falls on all of them alike and their ratios stay fair). Records found in
    `store` are reused (marked `cached`); new ones are stored. Before timing, the machine is
    checked as `profile_layers` does (`quiet`).

    Each figure is also put on the layer profile's footing (`footing`: the profile's
    reference figures; by default read from `store`), so that it compares with predictions
    whatever speed the shared machine ran at (`SubnetLatency.profile_latency_ms`, `speed`)."""
    from hwnas.profilers import programs

    hw = load_profile(hw) if isinstance(hw, str) else hw
    specs = [sn.validate(s) for s in specs]
    backend = backend or backend_for(hw)
    fp = machine_fingerprint(hw, backend)
    check_pinned(hw.name, hw.fingerprint, fp, force)
    fp_key = fp.key(backend.libraries)
    chosen = _chosen(hw, workloads_)
    jobs = [[base_spec(hw, sn.arch, "subnet", w, subnet=s.to_json()) for w in chosen]
            for s in specs]
    for row in jobs:
        for j in row:
            programs.check_positions(sn.config, j, f"hardware profile '{hw.name}'")
    found: dict[tuple[int, int], Measurement] = {}
    if store is not None:
        for i, row in enumerate(jobs):
            for k, j in enumerate(row):
                rec = store.get_measurement(j.key(fp_key))
                if rec is not None and "times_ms" in rec:
                    found[i, k] = Measurement.from_dict(rec)
    todo = [(i, k) for i, row in enumerate(jobs) for k in range(len(row)) if (i, k) not in found]
    cached = set(found)
    if todo:
        found.update(_time(hw, sn, specs, jobs, todo, backend, fp, fp_key, store,
                           quiet or quiet_for(hw.interference)))
    if footing is None and store is not None:
        footing = profile_reference(store, hw, sn.arch.key())
    pre, dec = hw.primary_workloads
    out = []
    for i, spec in enumerate(specs):
        ms = tuple(found[i, k] for k in range(len(chosen)))
        per = {w.name: m.value_ms(hw.timer.statistic) for w, m in zip(chosen, ms, strict=True)}
        latency = hw.primary.compose(per[pre], per.get(dec, 0.0))
        footed, speed = _on_footing(ms, hw.timer.statistic, footing or Footing())
        out.append(SubnetLatency(hw.name, spec.to_json(), spec.key(), latency,
                                 hw.primary.describe(), per, ms,
                                 tuple((i, k) in cached for k in range(len(chosen))),
                                 footed, speed,
                                 hw.primary.compose(footed[pre], footed.get(dec, 0.0))
                                 if pre in footed and (dec in footed or dec not in per)
                                 else None))
    return out


def _on_footing(ms: tuple[Measurement, ...], statistic: str,
                footing: Footing) -> tuple[dict[str, float], dict[str, float]]:
    """Per workload, the figure on the profile's footing and the machine's speed beside it
    (only the workloads whose record has a usable reference)."""
    footed, speed = {}, {}
    for m in ms:
        value, scale = rescaled_ms(m.to_dict(), statistic, footing)
        if scale is not None:
            footed[m_name(m)], speed[m_name(m)] = value, 1.0 / scale
    return footed, speed


def measure_each(hw: HardwareProfile, sn: Supernet, specs: list[SubnetSpec], store: Storage,
                 progress: Progress | None = None) -> int:
    """Time each spec in its own group at the two workloads of the primary metric and store
    the records, reporting before each. Returns how many were timed."""
    for i, spec in enumerate(specs):
        if progress is not None:
            progress(ProgressEvent("measure", i, len(specs), f"{spec.num_layers} layers"))
        measure_subnet(hw, sn, spec, store=store, workloads_="primary")
    return len(specs)


def _chosen(hw: HardwareProfile, which: str) -> list[Workload]:
    all_w = workloads(hw)
    if which == "all":
        return all_w
    if which == "primary":
        return [w for w in all_w if w.name in hw.primary_workloads]
    from hwnas.errors import InputError
    raise InputError(f"workloads '{which}': use 'all' or 'primary'")


def _time(hw: HardwareProfile, sn: Supernet, specs: list[SubnetSpec],
          jobs: list[list[TimingSpec]], todo: list[tuple[int, int]], backend: Backend,
          fp: Fingerprint, fp_key: str, store: Storage | None,
          quiet: Quiet) -> dict[tuple[int, int], Measurement]:
    """Time the `todo` (subnet, workload) pairs interleaved, with one reference per workload:
    the full-width layer timed in context as the profile times it, so that a record can be
    put on the layer profile's footing (`Measurement.reference`), whenever it was taken; and,
    where the profile reads subnets against the whole model (`timer.subnet_reference:
    model`), the full model at each workload beside them (`Measurement.model_reference`)."""
    from hwnas.profilers import programs

    backend.setup(hw)
    models = {i: sn.extract(specs[i]) for i in sorted({i for i, _ in todo})}
    runnables: list[Runnable] = [
        backend.prepare(programs.subnet_program(models[i], sn.arch, specs[i].kv_heads,
                                                jobs[i][k]), hw) for i, k in todo]
    ref_workloads = sorted({k for _, k in todo})
    ref_jobs = [jobs[todo[0][0]][k] for k in ref_workloads]
    refs = _references(hw, sn, backend, ref_jobs)
    runnables += [r for _, r in refs]
    wholes = _model_references(hw, sn, backend, ref_jobs) \
        if hw.timer.subnet_reference == "model" else []
    runnables += wholes
    quiet.before_group(f"timing {len(specs)} subnet(s)")
    before = backend.telemetry(hw)
    started = quiet.reader()
    timed: dict[int, Timed] = {}
    loads: dict[int, MachineLoad] = {}

    def on_result(n: int, t: Timed) -> None:
        timed[n] = t
        loads[n] = MachineLoad.between(started, quiet.reader())

    settings = hw.timer.model_copy(update={"max_time_s": max(hw.timer.max_time_s,
                                                              hw.timer.subnet_time_s)})
    measure_group(runnables, settings, None, on_result,
                  anchors=range(len(todo), len(runnables)))
    after = backend.telemetry(hw)
    out: dict[tuple[int, int], Measurement] = {}
    for n, (i, k) in enumerate(todo):
        fingerprint: dict[str, object] = fp.to_dict()
        if before or after:
            fingerprint["telemetry"] = {"before": before, "after": after}
        j = ref_workloads.index(k)
        r = len(todo) + j
        ref_spec, ref_run = refs[j]
        reference: dict[str, object] = {} if r not in timed else {
            "width": ref_spec.width, "kv_heads": ref_spec.kv_heads, "units": ref_run.units,
            "times_ms": list(timed[r].times_ms), "stamps": list(timed[r].stamps)}
        w = len(todo) + len(refs) + j
        model_reference: dict[str, object] = {} if not wholes or w not in timed else {
            "times_ms": list(timed[w].times_ms), "stamps": list(timed[w].stamps)}
        m = Measurement(spec=jobs[i][k], times_ms=timed[n].times_ms, fingerprint=fingerprint,
                        noise_threshold=hw.timer.noise_threshold,
                        remeasured=timed[n].attempts - 1,
                        interference=dict(loads[n].to_dict(hw.interference)),
                        measured_at=time.time(), reference=reference,
                        model_reference=model_reference, stamps=timed[n].stamps)
        out[i, k] = m
        if store is not None:
            store.put_measurement(jobs[i][k].key(fp_key), hw=hw.name, model=sn.arch.key(),
                                  kind="subnet", median_ms=m.median_ms, noisy=m.noisy,
                                  record=m.to_dict())
    return out


_REFERENCES: OrderedDict[tuple[str, str, TimingSpec], tuple[TimingSpec, PerUnit]] = OrderedDict()
REFERENCES_KEPT = 8  # prepared references held per process (a profile's workloads, a few
# profiles); each holds a chain of layer copies larger than twice the last-level cache


def _references(hw: HardwareProfile, sn: Supernet, backend: Backend,
                subnet_specs: list[TimingSpec]) -> list[tuple[TimingSpec, PerUnit]]:
    """For each workload (given by one subnet job at it), the full-width, full-KV layer
    record's program as the layer profile times it (a chain in context), read per copy.
    Prepared once per process, backend kind, profile and workload (an ONNX export is slow),
    whatever `Backend` instance asks: each `measure_subnets` call makes its own, so a key
    holding the instance never matched again and every call built (and kept) new chains."""
    import dataclasses

    from hwnas.profilers import programs
    from hwnas.profilers.backends.base import building

    width, kv = max(sn.space.width_choices), max(sn.space.kv_choices)
    specs = [dataclasses.replace(job, target="layer", width=width, kv_heads=kv, subnet=None)
             for job in subnet_specs]
    keys = [(backend_identity(backend), hw.model_dump_json(), spec) for spec in specs]
    missing = [(k, spec) for k, spec in zip(keys, specs, strict=True) if k not in _REFERENCES]
    if missing:
        config = sn.layer_config(width, kv)
        with building(backend):
            chain = programs.build_layer_chain(sn.arch, config, hw.dtype,
                                               backend.cache_bytes(hw), hw.timer)
            for key, spec in missing:
                prog = programs.layer_program(sn.arch, config, chain, spec)
                _REFERENCES[key] = (spec, PerUnit(backend.prepare(prog, hw), prog.units))
    _keep_recent(_REFERENCES, keys, REFERENCES_KEPT)
    return [_REFERENCES[k] for k in keys]


_MODEL_REFERENCES: OrderedDict[tuple[str, str, str, TimingSpec], Runnable] = OrderedDict()
MODEL_REFERENCES_KEPT = 4  # prepared full models held per process (a profile's workloads):
# each holds a whole model's weights


def _model_references(hw: HardwareProfile, sn: Supernet, backend: Backend,
                      subnet_specs: list[TimingSpec]) -> list[Runnable]:
    """For each workload (given by one subnet job at it), the full model's program as a
    whole subnet is timed, prepared once per process, backend kind, profile, model shape and
    workload (an ONNX export of a whole model is slow), the least recently used dropped."""
    import dataclasses

    from hwnas.profilers import programs

    full = sn.space.full()
    specs = [dataclasses.replace(job, subnet=full.to_json()) for job in subnet_specs]
    keys = [(backend_identity(backend), hw.model_dump_json(), sn.arch.key(), spec)
            for spec in specs]
    missing = [(k, spec) for k, spec in zip(keys, specs, strict=True)
               if k not in _MODEL_REFERENCES]
    if missing:
        model = sn.extract(full)
        for key, spec in missing:
            _MODEL_REFERENCES[key] = backend.prepare(
                programs.subnet_program(model, sn.arch, full.kv_heads, spec), hw)
    _keep_recent(_MODEL_REFERENCES, keys, MODEL_REFERENCES_KEPT)
    return [_MODEL_REFERENCES[k] for k in keys]


def _keep_recent(cache: OrderedDict[Any, Any], keys: list[Any], kept: int) -> None:
    """Mark `keys` as just used and drop the least recently used entries beyond `kept`
    (never one of `keys`)."""
    for k in keys:
        cache.move_to_end(k)
    while len(cache) > max(kept, len(keys)):
        cache.popitem(last=False)


def backend_identity(backend: Backend) -> str:
    """What makes two `Backend` instances interchangeable for a prepared program: their class,
    plus whatever the backend says tells its prepared programs apart (`identity()`, optional;
    the fake backend's is its instance, whose runnables draw seeded noise)."""
    ident = getattr(backend, "identity", None)
    kind = f"{type(backend).__module__}.{type(backend).__qualname__}"
    return f"{kind}:{ident()}" if callable(ident) else kind
