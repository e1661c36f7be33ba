"""The layer profile's footing: whole-subnet figures put on the speed the machine ran at when
its layers were profiled.

A shared machine's speed drifts by tens of percent over minutes (other tenants on the host,
which no counter in the guest shows). A layer-composed prediction stands for the speed of the
profiling run; a figure timed later stands for the speed of its own minutes. Every whole-subnet
group therefore also times the profile's reference layer (the full-width layer in context, as
the profile times it, `Measurement.reference`). The ratio of the profile's figure for that
layer to the one timed beside the subnet is the record's `scale`; the subnet's figure times
the scale is its figure on the profile's footing, comparable with predictions and with any
other record, whenever it was taken. `speed = 1 / scale` says how fast the machine ran then,
relative to its profiling run.

Within a group, figures are read against the reference run by run: every record keeps when
each of its calls started (`Measurement.stamps`), the reference runs in every round of its
group (an anchor of `measure_group`), and a record's figure is the median, over its runs, of
its time over the reference's time at that moment (the nearest reference runs), times the
reference's own figure. The machine's drift during the group then cancels out of every figure,
the layer profile's included (`figure_ms`); records without stamps (older ones) keep their
plain statistic.

A whole model and a layer chain can feel the machine differently (OpenVINO's decode step here:
the reference layer follows the whole model's slow and fast spells only partly). A profile
with `timer.subnet_reference: model` therefore also times the full model beside every subnet
group (`Measurement.model_reference`): a record's figure is then its ratio to the full model
beside it, run by run, times the full model's own figure on the layer profile's footing
(`model_figures`, read from the store's first records and fixed by them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hwnas.hw_profiles.workload import Workload
from hwnas.profilers.measurement import pick_ms
from hwnas.store import Record, Storage

if TYPE_CHECKING:
    from hwnas.hw_profiles import HardwareProfile

Reference = dict[tuple[str, int, int], float]  # (workload name, width, kv heads) -> ms


@dataclass(frozen=True)
class Footing:
    """What puts whole-subnet figures on the layer profile's footing: the profile's figure per
    (workload, width, kv heads) (`layers`), and, for a profile that reads subnets against the
    whole model (`timer.subnet_reference: model`), the full model's figure per workload on
    that footing (`model`, `model_figures`). Empty: figures stay as timed."""

    layers: Reference = field(default_factory=dict)
    model: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.layers)


MODEL_FIGURE_RECORDS = 10  # the full model's figure is read from this many first records
BESIDE = {"layer": "the reference layer", "model": "the full model"}  # what a profile's
# whole-subnet records are read against (`timer.subnet_reference`), in words


def statistic_ms(rec: Record, statistic: str = "median") -> float:
    """The latency a stored record (`Measurement.to_dict()`) stands for (`pick_ms`)."""
    return pick_ms(rec["median_ms"], rec.get("times_ms", ()), statistic)


NEAREST = 3  # reference runs that give its time at a moment (their median)
MAX_GAP_S = 5.0  # a run with no reference run closer in time than this is not read


def paired_ratios(times: Sequence[float], stamps: Sequence[float], ref_times: Sequence[float],
                  ref_stamps: Sequence[float]) -> list[float]:
    """Each run's time over the reference's time when it ran (the median of the `NEAREST`
    reference runs nearest in time), for the runs with a reference run within `MAX_GAP_S`;
    empty without stamps."""
    if (len(stamps) == 0 or len(ref_stamps) == 0 or len(stamps) != len(times)
            or len(ref_stamps) != len(ref_times)):
        return []
    rs, rt = np.asarray(ref_stamps, dtype=float), np.asarray(ref_times, dtype=float)
    ratios = []
    for t, x in zip(stamps, times, strict=True):
        gap = np.abs(rs - t)
        near = np.argsort(gap)[:NEAREST]
        if gap[near[0]] <= MAX_GAP_S:
            ratios.append(float(x) / float(np.median(rt[near])))
    return ratios


def paired_ratio(times: Sequence[float], stamps: Sequence[float], ref_times: Sequence[float],
                 ref_stamps: Sequence[float]) -> float | None:
    """The median of `paired_ratios`; None when there is none."""
    ratios = paired_ratios(times, stamps, ref_times, ref_stamps)
    return float(np.median(ratios)) if ratios else None


def noisy_as_read(rec: Record, anchors: dict[str, Record]) -> bool:
    """Whether a record's runs spread by more than its noise threshold (IQR over median) as
    its figure reads them: its ratios to the reference beside it (its group's anchor, or a
    whole subnet's own reference), or its times as timed when it has none."""
    ref = rec.get("reference") or anchors.get(rec.get("group") or "")
    if ref and ref.get("spec") != rec["spec"]:
        ratios = paired_ratios(rec["times_ms"], rec.get("stamps") or (),
                               ref.get("times_ms") or (), ref.get("stamps") or ())
        if len(ratios) >= 2:
            q1, med, q3 = np.percentile(ratios, [25, 50, 75])
            return bool((q3 - q1) / max(med, 1e-12) > float(rec.get("noise_threshold", 0.1)))
    return bool(rec.get("noisy"))


def group_anchors(layer_recs: Iterable[Record]) -> dict[str, Record]:
    """Per timed group (`Measurement.group`), its reference: the widest layer with the most
    KV groups, as the profiler anchors it."""
    out: dict[str, Record] = {}
    for r in layer_recs:
        g, spec = r.get("group"), r["spec"]
        if not g or not r.get("stamps"):
            continue
        have = out.get(g)
        if have is None or (spec["width"], spec["kv_heads"]) > (have["spec"]["width"],
                                                                 have["spec"]["kv_heads"]):
            out[g] = r
    return out


def figure_ms(rec: Record, statistic: str, anchors: dict[str, Record]) -> float:
    """A profile record's figure (layer, embedding or head): read run by run against its
    group's reference (`paired_ratio`) times the reference's own figure; the plain statistic
    for the reference itself and for records without stamps."""
    anchor = anchors.get(rec.get("group") or "")
    if anchor is None or anchor["spec"] == rec["spec"]:
        return statistic_ms(rec, statistic)
    ratio = paired_ratio(rec["times_ms"], rec.get("stamps") or (), anchor["times_ms"],
                         anchor["stamps"])
    return statistic_ms(rec, statistic) if ratio is None else \
        ratio * statistic_ms(anchor, statistic)


def profile_reference(store: Storage, hw: HardwareProfile, arch_key: str) -> Footing:
    """The layer profile's figure per (workload, width, kv heads), under the profile's
    statistic, and the full model's figures where the profile reads subnets against it;
    empty without a profile, and empty where the profile reads every record as timed
    (`timer.rescale_subnets: false`), so that whole-subnet figures stay as timed, as that
    profile's predictors take them."""
    if not hw.timer.rescale_subnets:
        return Footing()
    recs = store.measurements(hw=hw.name, model=arch_key, kind="layer")
    anchors = group_anchors(recs)
    out: Reference = {}
    for r in recs:
        spec = r["spec"]
        out[Workload.from_dict(spec).name, int(spec["width"]), int(spec["kv_heads"])] = \
            figure_ms(r, hw.timer.statistic, anchors)
    if hw.timer.subnet_reference != "model":
        return Footing(out)
    subnets = store.measurements(hw=hw.name, model=arch_key, kind="subnet")
    return Footing(out, model_figures(subnets, out))


def model_figures(subnet_recs: Iterable[Record], layers: Reference) -> dict[str, float]:
    """Per workload, the full model's figure on the layer profile's footing: in each of the
    first `MODEL_FIGURE_RECORDS` whole-subnet records (by when they were taken) that carry
    both references, the full model's runs read run by run against the reference layer's runs
    beside them, times the layer's figure in the profile; the median of those. The first
    records fix it, so records added later do not move the footing of earlier ones."""
    per: dict[str, list[float]] = defaultdict(list)
    ordered = sorted(subnet_recs, key=lambda r: (float(r.get("measured_at") or 0.0),
                                                 str(r["spec"].get("subnet"))))
    for r in ordered:
        model, ref = r.get("model_reference") or {}, r.get("reference") or {}
        name = Workload.from_dict(r["spec"]).name
        base = layers.get((name, ref.get("width"), ref.get("kv_heads")))  # type: ignore[arg-type]
        if base is None or not model.get("times_ms") or len(per[name]) >= MODEL_FIGURE_RECORDS:
            continue
        ratio = paired_ratio(model["times_ms"], model.get("stamps") or (),
                             ref.get("times_ms") or (), ref.get("stamps") or ())
        if ratio is not None:
            per[name].append(ratio * base)
    return {name: float(np.median(v)) for name, v in per.items()}


def rescaled_ms(rec: Record, statistic: str, footing: Footing) -> tuple[float, float | None]:
    """A whole-subnet record's figure on the layer profile's footing: read run by run against
    the full model timed beside it, times the full model's figure (`Footing.model`), where
    the footing has one and the record carries the full model's runs; else its value times
    the profile's reference layer over the same layer timed beside it (both under
    `statistic`). Returns (value, scale); scale is None (value as stored) without a usable
    reference."""
    value = statistic_ms(rec, statistic)
    name = Workload.from_dict(rec["spec"]).name
    model, whole = rec.get("model_reference") or {}, footing.model.get(name)
    if whole is not None and model.get("times_ms") and value > 0:
        ratio = paired_ratio(rec["times_ms"], rec.get("stamps") or (), model["times_ms"],
                             model.get("stamps") or ())
        if ratio is not None:
            return ratio * whole, ratio * whole / value
    ref = rec.get("reference") or {}
    times = ref.get("times_ms") or ()
    base = footing.layers.get((name, ref.get("width"), ref.get("kv_heads")))  # type: ignore[arg-type]
    if not times or base is None:
        return value, None
    ratio = paired_ratio(rec["times_ms"], rec.get("stamps") or (), times,
                         ref.get("stamps") or ())
    if ratio is not None and value > 0:  # read run by run against the reference beside it
        return ratio * base, ratio * base / value
    beside = pick_ms(float(np.median(times)), times, statistic)
    if beside <= 0:
        return value, None
    scale = base / beside
    return value * scale, scale
