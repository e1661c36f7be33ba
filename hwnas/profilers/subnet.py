"""`measure_subnet`: time one whole subnet for real, at the profile's workloads, and compose
the primary metric from the measured prefill and decode steps.

The subnet is cut from the supernet (`sn.extract`) and run as a `SubnetStep` (its own
embedding, layers, norm and head, with explicit KV caches), so every backend runs the same
graph; its output equals the transformers model's logits (tests check this). Workloads are
timed interleaved; with a store, records are kept (kind "subnet") and reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwnas.datasets.store import Store
from hwnas.hw_profiles import HardwareProfile, check_pinned, load_profile
from hwnas.profilers.backends import backend_for, machine_fingerprint
from hwnas.profilers.jobs import Workload, base_spec, workloads
from hwnas.profilers.measurement import Measurement
from hwnas.profilers.timer import measure_group
from hwnas.supernet.space import SubnetSpec


@dataclass(frozen=True)
class SubnetLatency:
    hw: str
    subnet: str  # canonical SubnetSpec JSON
    subnet_key: str
    latency_ms: float  # the profile's primary metric
    primary: str  # how latency_ms is composed
    per_workload: dict[str, float] = field(default_factory=dict)  # median ms per workload
    measurements: tuple[Measurement, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"hw": self.hw, "subnet": self.subnet, "subnet_key": self.subnet_key,
                "latency_ms": self.latency_ms, "primary": self.primary,
                "per_workload": self.per_workload,
                "noisy": {m_name(m): m.noisy for m in self.measurements},
                "iqr_ms": {m_name(m): m.iqr_ms for m in self.measurements}}


def m_name(m: Measurement) -> str:
    s = m.spec
    return f"prefill@{s.tokens}" if s.phase == "prefill" else f"decode@{s.context}"


def measure_subnet(hw: HardwareProfile | str, sn: Any, spec: SubnetSpec,
                   store: Store | None = None, workloads_: str = "all",
                   force: bool = False, backend: Any = None) -> SubnetLatency:
    """Time `spec` cut from `sn` on `hw`. `workloads_`: "all" of the profile's workloads or
    only the two the "primary" metric needs."""
    from hwnas.profilers import programs

    hw = load_profile(hw) if isinstance(hw, str) else hw
    spec = sn.validate(spec)
    backend = backend or backend_for(hw)
    fp = machine_fingerprint(hw, backend)
    check_pinned(hw.name, hw.fingerprint, fp, force)
    fp_key = fp.key(backend.libraries)
    chosen = _chosen(hw, workloads_)
    specs = [base_spec(hw, sn.arch, "subnet", w, subnet=spec.to_json()) for w in chosen]
    for s in specs:
        programs.check_positions(sn.config, s, f"hardware profile '{hw.name}'")
    found: dict[int, Measurement] = {}
    if store is not None:
        for i, s in enumerate(specs):
            rec = store.get_measurement(s.key(fp_key))
            if rec is not None and "times_ms" in rec:
                found[i] = Measurement.from_dict(rec)
    todo = [i for i in range(len(specs)) if i not in found]
    if todo:
        found.update(_time(hw, sn, spec, [specs[i] for i in todo], todo, backend, fp, fp_key,
                           store))
    ms = tuple(found[i] for i in range(len(specs)))
    per = {w.name: m.median_ms for w, m in zip(chosen, ms, strict=True)}
    pre, dec = hw.primary_workloads
    latency = hw.primary.compose(per[pre], per.get(dec, 0.0))
    return SubnetLatency(hw.name, spec.to_json(), spec.key(), latency, hw.primary.describe(),
                         per, ms)


def _chosen(hw: HardwareProfile, which: str) -> list[Workload]:
    all_w = workloads(hw)
    if which == "all":
        return all_w
    if which == "primary":
        return [w for w in all_w if w.name in hw.primary_workloads]
    from hwnas.errors import InputError
    raise InputError(f"workloads '{which}': use 'all' or 'primary'")


def _time(hw: HardwareProfile, sn: Any, spec: SubnetSpec, specs: list[Any], index: list[int],
          backend: Any, fp: Any, fp_key: str, store: Store | None) -> dict[int, Measurement]:
    from hwnas.profilers import programs

    model = sn.extract(spec)
    backend.setup(hw)
    runnables = [backend.prepare(programs.subnet_program(model, sn.arch, spec.kv_heads, s), hw)
                 for s in specs]
    before = backend.telemetry(hw)
    out: dict[int, Measurement] = {}

    def on_result(i: int, timed: Any) -> None:
        fingerprint = fp.to_dict()
        after = backend.telemetry(hw)
        if before or after:
            fingerprint["telemetry"] = {"before": before, "after": after}
        m = Measurement(spec=specs[i], times_ms=timed.times_ms, fingerprint=fingerprint,
                        noise_threshold=hw.timer.noise_threshold,
                        remeasured=timed.attempts - 1)
        out[index[i]] = m
        if store is not None:
            store.put_measurement(specs[i].key(fp_key), hw=hw.name, model=sn.arch.key(),
                                  kind="subnet", median_ms=m.median_ms, noisy=m.noisy,
                                  record=m.to_dict())

    measure_group(runnables, hw.timer, None, on_result)
    return out
