"""Read what the predictors learn from out of the store, into plain typed values.

Layer, embedding and head measurements (kind "layer" / "embed" / "head") and whole-subnet
measurements (kind "subnet") of one hardware profile and model shape; accuracy evaluations of
one model. Missing data is an `InputError` naming the command that produces it.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, overload

import numpy as np
from numpy.typing import NDArray

from hwnas.errors import InputError
from hwnas.evaluation.result import score_of
from hwnas.hw_profiles.workload import Workload
from hwnas.profilers.footing import (
    Footing,
    Reference,
    figure_ms,
    group_anchors,
    model_figures,
    noisy_as_read,
    rescaled_ms,
    statistic_ms,
)
from hwnas.store import Record, Storage
from hwnas.supernet.space import SubnetSpec

if TYPE_CHECKING:
    from hwnas.hw_profiles.schema import HardwareProfile


@dataclass(frozen=True)
class LayerSample:
    width: int
    kv_heads: int
    workload: Workload
    ms: float
    timed_s: float  # seconds spent in the timed runs of this measurement


@dataclass(frozen=True)
class SubnetSample:
    spec: SubnetSpec
    per_workload: dict[str, float]  # workload name -> median ms


class PrimaryDict(TypedDict):
    """`Primary.to_dict()`: the two workloads (`Workload.to_dict()`) and the decode steps."""

    prefill: dict[str, int | str]
    decode: dict[str, int | str]
    decode_tokens: int


@dataclass(frozen=True)
class Primary:
    """The profile's primary metric: prefill + decode_tokens x one decode step."""

    prefill: Workload
    decode: Workload
    decode_tokens: int

    @overload
    def compose(self, prefill_ms: float, decode_ms: float) -> float: ...
    @overload
    def compose(self, prefill_ms: NDArray[np.float64],
                decode_ms: NDArray[np.float64]) -> NDArray[np.float64]: ...

    def compose(self, prefill_ms: float | NDArray[np.float64],
                decode_ms: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
        """The primary metric from prefill and decode-step latencies (numbers or arrays)."""
        return prefill_ms + self.decode_tokens * decode_ms

    def to_dict(self) -> PrimaryDict:
        return {"prefill": self.prefill.to_dict(), "decode": self.decode.to_dict(),
                "decode_tokens": self.decode_tokens}

    @classmethod
    def from_dict(cls, d: PrimaryDict) -> Primary:
        return cls(Workload.from_dict(d["prefill"]), Workload.from_dict(d["decode"]),
                   int(d["decode_tokens"]))

    @classmethod
    def of_profile(cls, hw: HardwareProfile) -> Primary:
        p = hw.primary
        return cls(Workload("prefill", p.prefill_tokens, 0, hw.batch),
                   Workload("decode", 1, p.prefill_tokens + p.decode_tokens // 2, hw.batch),
                   int(p.decode_tokens))


@dataclass(frozen=True)
class ProfileData:
    hw: str
    arch_key: str
    layers: tuple[LayerSample, ...]
    fixed_ms: dict[str, float]  # workload name -> embed + head median ms
    subnets: tuple[SubnetSample, ...] = ()
    fingerprint: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""
    statistic: str = "median"
    noisy_layers: float = 0.0  # share of layer records noisy as read (against the reference
    # beside them when read so, `footing.noisy_as_read`; else as the profiler flagged them)
    noisy_subnets: float = 0.0  # share of whole-subnet records noisy, likewise
    busy_layers: float = 0.0  # share of layer records timed on a busy machine
    busy_subnets: float = 0.0  # share of whole-subnet records timed on a busy machine
    speed_scales: tuple[float, ...] = ()  # per rescaled whole-subnet record: the layer
    # profile's reference layer over the same layer timed beside the subnet

    def workloads(self) -> list[Workload]:
        return sorted({s.workload for s in self.layers})


def _profile_hint(hw: str, model: str) -> str:
    return f"run `hwnas profile --hw {hw} --model {model}` first"


def load_profile_data(store: Storage, hw: str, arch_key: str, model: str,
                      statistic: str = "median", rescale: bool = True,
                      subnet_reference: str = "layer") -> ProfileData:
    """Layer, fixed-part and subnet measurements of profile `hw` for model shape `arch_key`.

    `rescale`: every figure is read against the reference layer timed beside it
    (`hwnas.profilers.footing`): profile records run by run against their group's reference
    (`figure_ms`), whole-subnet figures put on the layer profile's footing (`rescaled_ms`). A
    machine that ran slower or faster during one record, or when a subnet was measured than
    when the layers were profiled, then does not read as predictor error.
    `subnet_reference` (the profile's `timer.subnet_reference`): "model" reads whole subnets
    against the full model timed beside them (`Footing.model`)."""
    layer_recs = store.measurements(hw=hw, model=arch_key, kind="layer")
    if not layer_recs:
        raise InputError(f"no layer measurements in the store for hardware profile '{hw}' and "
                         f"model '{model}' (shape {arch_key}); {_profile_hint(hw, model)}")
    anchors = group_anchors(layer_recs) if rescale else {}
    layers = tuple(_layer_sample(r, statistic, anchors) for r in layer_recs)
    fixed: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, set[str]] = defaultdict(set)
    for kind in ("embed", "head"):
        per_wl: dict[str, list[float]] = defaultdict(list)
        for r in store.measurements(hw=hw, model=arch_key, kind=kind):
            per_wl[Workload.from_dict(r["spec"]).name].append(figure_ms(r, statistic, anchors))
        for name, values in per_wl.items():
            fixed[name].append(float(np.median(values)))
            parts[name].add(kind)
    fixed_ms = {n: float(sum(v)) for n, v in fixed.items() if parts[n] == {"embed", "head"}}
    missing = sorted({s.workload.name for s in layers} - set(fixed_ms))
    if missing:
        raise InputError(f"the store has layer measurements but no embedding/head measurements "
                         f"for workload(s) {', '.join(missing)} of profile '{hw}', model "
                         f"'{model}'; {_profile_hint(hw, model)}")
    reference: Reference = {(s.workload.name, s.width, s.kv_heads): s.ms for s in layers}
    scales: list[float] = []
    subnet_recs = store.measurements(hw=hw, model=arch_key, kind="subnet")
    footing = None if not rescale else Footing(
        reference, model_figures(subnet_recs, reference) if subnet_reference == "model" else {})
    subnets = subnet_samples(subnet_recs, statistic, footing, scales)
    return ProfileData(hw=hw, arch_key=arch_key, layers=layers, fixed_ms=fixed_ms,
                       subnets=subnets, fingerprint=_common_fingerprint(layer_recs),
                       data_hash=_hash(layer_recs) + ("" if statistic == "median" else
                                                      f"-{statistic}"),
                       statistic=statistic,
                       noisy_layers=_noisy_share(layer_recs, anchors, rescale),
                       noisy_subnets=_noisy_share(subnet_recs, anchors, rescale),
                       busy_layers=_share(layer_recs, "busy"),
                       busy_subnets=_share(subnet_recs, "busy"),
                       speed_scales=tuple(scales))


def _noisy_share(recs: list[Record], anchors: dict[str, Record], read: bool) -> float:
    """The share of records whose runs spread beyond their threshold as their figures read
    them (`noisy_as_read`), or as flagged when records are read as timed."""
    if not read:
        return _share(recs, "noisy")
    return float(np.mean([noisy_as_read(r, anchors) for r in recs])) if recs else 0.0


def _share(recs: list[Record], flag: str) -> float:
    """The share of records carrying `flag` ("noisy", "busy")."""
    return float(np.mean([bool(r.get(flag)) for r in recs])) if recs else 0.0


def _layer_sample(rec: Record, statistic: str, anchors: dict[str, Record]) -> LayerSample:
    spec = rec["spec"]
    return LayerSample(width=int(spec["width"]), kv_heads=int(spec["kv_heads"]),
                       workload=Workload.from_dict(spec), ms=figure_ms(rec, statistic, anchors),
                       timed_s=float(np.sum(rec.get("times_ms", ()))) / 1000.0)


def load_subnet_samples(store: Storage, hw: str, arch_key: str,
                        statistic: str = "median") -> tuple[SubnetSample, ...]:
    """The stored whole-subnet figures of (hw, arch_key), as measured."""
    return subnet_samples(store.measurements(hw=hw, model=arch_key, kind="subnet"), statistic)


def subnet_samples(recs: list[Record], statistic: str = "median",
                   footing: Footing | None = None,
                   scales: list[float] | None = None) -> tuple[SubnetSample, ...]:
    """Whole-subnet records as figures per workload; with a `footing` (the layer profile's
    figure per (workload, width, kv), the full model's per workload), each put on the layer
    profile's footing (`rescaled_ms`), the scales used appended to `scales`."""
    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in recs:
        spec = r["spec"]
        if not spec.get("subnet"):
            continue
        if footing is None:
            value = statistic_ms(r, statistic)
        else:
            value, scale = rescaled_ms(r, statistic, footing)
            if scale is not None and scales is not None:
                scales.append(scale)
        per[spec["subnet"]][Workload.from_dict(spec).name].append(value)
    out = []
    for spec_json, wls in per.items():
        sn = SubnetSpec.from_dict(json.loads(spec_json), "stored subnet measurement")
        out.append(SubnetSample(sn, {n: float(np.median(v)) for n, v in wls.items()}))
    return tuple(sorted(out, key=lambda s: s.spec.key()))


def _common_fingerprint(recs: list[Record]) -> dict[str, Any]:
    counts: dict[str, tuple[int, dict[str, Any]]] = {}
    for r in recs:
        fp = r.get("fingerprint") or {}
        k = json.dumps(fp, sort_keys=True, default=str)
        n, _ = counts.get(k, (0, fp))
        counts[k] = (n + 1, fp)
    return max(counts.values(), key=lambda t: t[0])[1] if counts else {}


def _hash(recs: list[Record]) -> str:
    items = sorted(json.dumps([r["spec"], r["median_ms"]], sort_keys=True) for r in recs)
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


# ---- accuracy -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccuracySample:
    spec: SubnetSpec
    accuracy: float  # one task's metric, or the mean over the chosen tasks


def load_accuracy_samples(store: Storage, model_fp: str, full: SubnetSpec, model: str,
                          tasks: list[str] | None = None) -> tuple[list[AccuracySample], list[str]]:
    """Evaluated subnets of one model. Without `tasks`, the accuracy task with the most
    evaluated subnets; with several tasks, a subnet's target is the mean over them, kept only
    when every task was evaluated on it. Per task, only the records on the most common
    number of items count (one item set). Returns (samples, tasks).

    Perplexity tasks are used only when named in `tasks`; their target is log(perplexity)
    (lower is better), and they are not averaged with accuracy tasks."""
    recs = [r for r in store.evaluations(model=model_fp) if _eval_spec(r, full) is not None]
    if not tasks:
        recs = [r for r in recs if r.get("metric") != "perplexity"]
    kinds = {r.get("metric") == "perplexity" for r in recs if r["task"] in (tasks or ())}
    if len(kinds) > 1:
        raise InputError(f"tasks {', '.join(tasks or ())} mix perplexity and accuracy; "
                         "train one predictor per kind (pass one --task)")
    best_n = _item_sets(recs)
    found = sorted(best_n)
    if tasks:
        use = list(tasks)
    else:
        use = [max(found, key=lambda t: best_n[t][1])] if found else []
    if not recs or not use or not set(use) <= set(found):
        missing = sorted(set(use) - set(found)) or use
        raise InputError(f"no accuracy evaluations in the store for model '{model}' on task(s) "
                         f"{', '.join(missing) or '(any)'}; run `hwnas evaluate --model {model} "
                         "--tasks TASK --subnet SPEC` on some subnets first")
    per: dict[str, dict[str, float]] = defaultdict(dict)
    specs: dict[str, SubnetSpec] = {}
    for r in recs:
        if r["task"] not in use or r.get("n") != best_n[r["task"]][0]:
            continue
        spec = _eval_spec(r, full)
        if spec is None:  # filtered above
            continue
        specs[spec.key()] = spec
        value = score_of(r)
        per[spec.key()][r["task"]] = (float(np.log(value)) if r.get("metric") == "perplexity"
                                      else value)
    samples = [AccuracySample(specs[k], float(np.mean([v[t] for t in use])))
               for k, v in sorted(per.items()) if set(use) <= set(v)]
    return samples, use


def _item_sets(recs: list[Record]) -> dict[str, tuple[int, int]]:
    """task -> (the most common item count n, how many subnets were evaluated on it)."""
    count: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in recs:
        count[r["task"]][int(r.get("n", 0))].add(str(r.get("subnet")))
    return {t: max(((n, len(s)) for n, s in by_n.items()), key=lambda x: (x[1], x[0]))
            for t, by_n in count.items()}


def _eval_spec(rec: Record, full: SubnetSpec) -> SubnetSpec | None:
    extra = rec.get("extra") or {}
    raw = extra.get("spec") or extra.get("subnet_spec")
    if raw is not None:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return SubnetSpec.from_dict(data, "stored evaluation")
    if rec.get("subnet") in ("full", full.key()):
        return full
    return None
