"""What the CLI and the search call: train from the store, predict a subnet, build a report.

Each function takes a `HardwareTarget` (a hardware profile and a model, resolved by
`resolve_target`) and a `Storage`, and returns plain values: `TrainResult`, `PredictedSubnet`,
`PredictorReport`. Missing data raises an `InputError` naming the command to run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.errors import InputError
from hwnas.predictors import holdout as ho
from hwnas.predictors import persist
from hwnas.predictors.composed import ComposedLatency, Overhead
from hwnas.predictors.data import (
    AccuracySample,
    Primary,
    ProfileData,
    load_accuracy_samples,
    load_profile_data,
    load_subnet_samples,
)
from hwnas.predictors.estimators import AccuracyPredictor
from hwnas.profilers.footing import BESIDE
from hwnas.store import Storage
from hwnas.supernet.arch import ArchInfo, arch_info
from hwnas.supernet.space import SearchSpace, SubnetSpec

if TYPE_CHECKING:
    from hwnas.hw_profiles.schema import HardwareProfile
    from hwnas.predictors.report import PredictorReport
    from hwnas.predictors.train import LatencyBundle
    from hwnas.profilers.peaks import Peaks


@dataclass(frozen=True)
class HardwareTarget:
    """A hardware profile and a model shape, resolved."""

    hw: HardwareProfile
    model: str
    arch: ArchInfo
    space: SearchSpace

    @property
    def primary(self) -> Primary:
        return Primary.of_profile(self.hw)

    @property
    def arch_key(self) -> str:
        return self.arch.key()


def resolve_target(hw: str | Path | HardwareProfile, model: str) -> HardwareTarget:
    """`hw`: a profile name, the path of a profile YAML, or a loaded profile."""
    from hwnas.hw_profiles import HardwareProfile, load_profile
    from hwnas.supernet.models import load_config

    profile = hw if isinstance(hw, HardwareProfile) else load_profile(hw)
    arch = arch_info(load_config(model))
    return HardwareTarget(profile, model, arch, SearchSpace.default(arch))


def missing_subnets(t: HardwareTarget, store: Storage, specs: list[SubnetSpec]) -> list[SubnetSpec]:
    """The specs whose two primary-metric workloads are not both in the store yet."""
    need = {t.primary.prefill.name, t.primary.decode.name}
    have = {s.spec.key() for s in load_subnet_samples(store, t.hw.name, t.arch_key)
            if need <= set(s.per_workload)}
    return [s for s in specs if s.key() not in have]


@dataclass(frozen=True)
class TrainedAccuracy:
    """The accuracy predictor that `train` fitted: on which tasks, from how many evaluated
    subnets, and where it was saved (None: not saved)."""

    tasks: list[str]
    n_subnets: int
    dir: Path | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"tasks": list(self.tasks), "n_subnets": self.n_subnets}
        if self.dir is not None:
            out["dir"] = str(self.dir)
        return out


@dataclass(frozen=True)
class TrainResult:
    """What `train` fitted and where it saved it (`latency_dir` None: not saved; `accuracy`
    None: no accuracy predictor, as no evaluations were stored)."""

    hw: str
    model: str
    arch_key: str
    n_layer_samples: int
    n_train_subnets: int
    overheads: dict[str, Overhead]  # workload name -> composition-overhead model
    wholenet: bool  # whether a whole-network predictor was trained (>= 3 training subnets)
    statistic: str
    latency_dir: Path | None = None
    accuracy: TrainedAccuracy | None = None

    def to_dict(self) -> dict[str, object]:
        """As `hwnas predictors train --json` prints it."""
        out: dict[str, object] = {
            "hw": self.hw, "model": self.model, "arch_key": self.arch_key,
            "n_layer_samples": self.n_layer_samples, "n_train_subnets": self.n_train_subnets,
            "overheads": {k: v.to_dict() for k, v in self.overheads.items()},
            "wholenet": self.wholenet, "statistic": self.statistic}
        if self.latency_dir is not None:
            out["latency_dir"] = str(self.latency_dir)
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy.to_dict()
        return out


def profile_data(t: HardwareTarget, store: Storage, statistic: str | None = None
                 ) -> ProfileData:
    """The target's profile measurements, read as its timer says (`timer.statistic` unless
    `statistic` is given, `timer.rescale_subnets`, `timer.subnet_reference`)."""
    timer = t.hw.timer
    return load_profile_data(store, t.hw.name, t.arch_key, t.model,
                             statistic or timer.statistic, timer.rescale_subnets,
                             timer.subnet_reference)


def train(t: HardwareTarget, store: Storage, *, seed: int = 0, tasks: list[str] | None = None,
          save: bool = True, statistic: str | None = None) -> TrainResult:
    """Train the latency predictor (and the accuracy predictor when evaluations exist).
    `statistic`: of each record's runs; default the profile's `timer.statistic`."""
    from hwnas.predictors.train import train_accuracy, train_latency

    statistic = statistic or t.hw.timer.statistic
    data = profile_data(t, store, statistic)
    train_subnets, _ = ho.split_subnets(t.space, data.subnets, 0)
    bundle = train_latency(t.hw.name, t.space, t.hw.dtype, t.primary, data, train_subnets, seed)
    latency_dir = None
    if save:
        latency_dir = persist.save_latency(
            bundle, persist.latency_dir(t.hw.name, t.arch_key), t.hw.to_dict(), t.model)
    trained_acc = None
    acc = _accuracy_samples(t, store, tasks)
    if acc is not None:
        samples, used, fp = acc
        est = train_accuracy(t.space, samples, seed)
        acc_dir = None
        if save:
            acc_dir = persist.save_accuracy(
                est, persist.accuracy_dir(fp, used), model=t.model, model_fp=fp, tasks=used,
                space=t.space, data_hash=_samples_hash(samples))
        trained_acc = TrainedAccuracy(used, len(samples), acc_dir)
    return TrainResult(hw=t.hw.name, model=t.model, arch_key=t.arch_key,
                       n_layer_samples=len(data.layers), n_train_subnets=len(train_subnets),
                       overheads=dict(bundle.composed.overheads),
                       wholenet=bundle.wholenet is not None, statistic=statistic,
                       latency_dir=latency_dir, accuracy=trained_acc)


def _accuracy_samples(t: HardwareTarget, store: Storage, tasks: list[str] | None
                      ) -> tuple[list[AccuracySample], list[str], str] | None:
    """(samples, tasks used, model fingerprint), or None when there are too few to train on
    and no task was asked for."""
    from hwnas.supernet.models import fingerprint

    fp = fingerprint(t.model)
    try:
        samples, used = load_accuracy_samples(store, fp, t.space.full(), t.model, tasks)
    except InputError:
        if tasks:
            raise
        return None
    if len(samples) < 5:
        if tasks:
            raise InputError(f"only {len(samples)} evaluated subnets of model '{t.model}' on "
                             f"{', '.join(used)}; evaluate at least 5 to train an accuracy "
                             "predictor")
        return None
    return samples, used, fp


def _samples_hash(samples: Sequence[AccuracySample]) -> str:
    blob = json.dumps(sorted([s.spec.to_json(), s.accuracy] for s in samples))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PredictedSubnet:
    """`predict`'s answer for one subnet: the primary metric with its 90% interval and the
    per-workload latencies (ms), whether the subnet lies inside the training data (and why
    not), and the accuracy (with interval and tasks) where an accuracy predictor exists."""

    subnet: str  # SubnetSpec.key()
    latency_ms: float
    latency_interval_ms: tuple[float, float]
    per_workload_ms: dict[str, float]
    in_domain: bool
    domain_reasons: list[str]
    primary_metric: str  # the profile's description of its primary metric
    hw: str
    accuracy: float | None = None
    accuracy_interval: tuple[float, float] | None = None
    accuracy_tasks: list[str] | None = None

    def to_dict(self) -> dict[str, object]:
        """As `hwnas predict --json` prints it (no accuracy keys without a predictor)."""
        out: dict[str, object] = {
            "subnet": self.subnet, "latency_ms": self.latency_ms,
            "latency_interval_ms": list(self.latency_interval_ms),
            "per_workload_ms": dict(self.per_workload_ms), "in_domain": self.in_domain,
            "domain_reasons": list(self.domain_reasons), "primary_metric": self.primary_metric,
            "hw": self.hw}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
            out["accuracy_interval"] = (list(self.accuracy_interval)
                                        if self.accuracy_interval is not None else None)
            out["accuracy_tasks"] = self.accuracy_tasks
        return out


def predict(t: HardwareTarget, specs: list[SubnetSpec], *, strict: bool = False,
            with_accuracy: bool = True) -> list[PredictedSubnet]:
    """Predicted latency (primary metric with its 90% interval, per workload), domain flag,
    and accuracy where an accuracy predictor of this model exists."""
    from hwnas.predictors.features import subnet_matrix

    for s in specs:
        t.space.validate(s)
    pred = _latency_bundle(t, strict).predict(specs)
    acc = _load_accuracy(t) if with_accuracy else None
    accuracy: list[tuple[float, tuple[float, float]]] = []
    acc_tasks: list[str] | None = None
    if acc is not None:
        est, meta = acc
        X = subnet_matrix(t.space, specs)
        lo, hi = est.predict_interval(X)
        accuracy = [(float(v), (float(a), float(b)))
                    for v, a, b in zip(est.predict(X), lo, hi, strict=True)]
        acc_tasks = meta["tasks"]
    out = []
    for i, s in enumerate(specs):
        value, interval = accuracy[i] if accuracy else (None, None)
        out.append(PredictedSubnet(
            subnet=s.key(), latency_ms=float(pred.primary[i]),
            latency_interval_ms=(float(pred.low[i]), float(pred.high[i])),
            per_workload_ms={k: float(v[i]) for k, v in pred.workloads.items()},
            in_domain=bool(pred.in_domain[i]), domain_reasons=pred.reasons[i],
            primary_metric=t.hw.primary.describe(), hw=t.hw.name, accuracy=value,
            accuracy_interval=interval, accuracy_tasks=acc_tasks))
    return out


def _latency_bundle(t: HardwareTarget, strict: bool, why: str = "") -> LatencyBundle:
    from hwnas.hw_profiles import collect_fingerprint

    folder = persist.latency_dir(t.hw.name, t.arch_key)
    if not (folder / persist.SIDECAR).is_file():
        raise InputError(f"{why}no trained latency predictor for hardware profile "
                         f"'{t.hw.name}' and model '{t.model}'; run `hwnas predictors train "
                         f"--hw {t.hw.name} --model {t.model}` first")
    return persist.load_latency(folder, collect_fingerprint(t.hw.device).to_dict().get("key"),
                                strict)


def latency_function(t: HardwareTarget, why: str = "") -> Callable[[SubnetSpec], float]:
    """The trained latency predictor's primary metric (ms) as a function of a subnet, for
    callers that rank or filter many subnets (the super-network trainer's band sampler)."""
    bundle = _latency_bundle(t, False, why)

    def latency_ms(spec: SubnetSpec) -> float:
        return float(bundle.predict([spec]).primary[0])

    return latency_ms


def _load_accuracy(t: HardwareTarget) -> tuple[AccuracyPredictor, dict[str, Any]] | None:
    """This model's saved accuracy predictor and its sidecar, if one was trained."""
    from hwnas.paths import cache_dir
    from hwnas.supernet.models import fingerprint

    fp = fingerprint(t.model)
    root = cache_dir() / "predictors" / "accuracy" / fp
    found = sorted(root.glob(f"*/{persist.SIDECAR}")) if root.is_dir() else []
    if not found:
        return None
    return persist.load_accuracy(found[0].parent, fp)


def report_dir(t: HardwareTarget) -> Path:
    from hwnas.paths import cache_dir
    return cache_dir() / "predictors" / t.hw.name / t.arch_key / "report"


def report_specs(t: HardwareTarget, n_holdout: int, n_train: int) -> list[SubnetSpec]:
    """The held-out subnets and the training subnets (composition overhead, whole-network
    predictors) that a report of `n_holdout` held-out subnets uses."""
    return ho.holdout_specs(t.space, n_holdout) + ho.train_subnet_specs(t.space, n_train)


def report(t: HardwareTarget, store: Storage, *, n_holdout: int = 50,
           peaks: Peaks | None = None, seed: int = 0, tasks: list[str] | None = None,
           efficiency: bool = True, statistic: str | None = None) -> PredictorReport:
    """Held-out metrics of every latency predictor and baseline, the sample-efficiency curve,
    and the accuracy predictor's cross-validated metrics when evaluations exist."""
    from hwnas.predictors import report as rp

    statistic = statistic or t.hw.timer.statistic
    data = profile_data(t, store, statistic)
    train_subnets, held = ho.split_subnets(t.space, data.subnets, n_holdout)
    need = {t.primary.prefill.name, t.primary.decode.name}
    held = [s for s in held if need <= set(s.per_workload)]
    if len(held) < 5:
        raise InputError(f"only {len(held)} held-out subnets of profile '{t.hw.name}' and model "
                         f"'{t.model}' are measured; run `hwnas predictors report --hw "
                         f"{t.hw.name} --model {t.model} --measure` to measure them for real")
    models = rp.latency_predictors(t.space, t.hw.dtype, t.primary, data, train_subnets, peaks,
                                   seed)
    metrics, points = rp.evaluate_latency(models, t.primary, held)
    notes = [f"latency statistic of every record (layers and held-out subnets alike): "
             f"{statistic}"]
    if max(data.noisy_layers, data.noisy_subnets) > 0.2:
        busy = max(data.busy_layers, data.busy_subnets) > 0
        cause = ("the machine was busy while measuring" if busy else
                 "no record was timed beside other work beyond the profile's interference "
                 "limits, so the spread is the runtime's own or the host's")
        notes.append(f"WARNING: {data.noisy_layers:.0%} of the layer records and "
                     f"{data.noisy_subnets:.0%} of the whole-subnet records are noisy (the "
                     "IQR/median of their runs, as their figures read them, above the "
                     f"profile's threshold): {cause}. These figures may describe that noise "
                     "more than the predictors; re-measure on a quiet machine into a fresh "
                     "store (`hwnas --cache-dir DIR profile ...`, then `hwnas --cache-dir DIR "
                     "predictors report --measure`)")
    if data.speed_scales:
        sc = sorted(data.speed_scales)
        notes.append(f"whole-subnet figures put on the layer profile's footing by "
                     f"{BESIDE[t.hw.timer.subnet_reference]} timed beside them "
                     f"({len(sc)} records; scale median "
                     f"{sc[len(sc) // 2]:.3f}, range {sc[0]:.3f}-{sc[-1]:.3f}); "
                     "`timer.rescale_subnets: false` in the profile turns this off")
    if max(data.busy_layers, data.busy_subnets) > 0:
        notes.append(f"WARNING: {data.busy_layers:.0%} of the layer records and "
                     f"{data.busy_subnets:.0%} of the whole-subnet records were timed while "
                     "other work used the machine beyond the profile's interference limits "
                     "(records marked busy): their figures may be slow and these accuracies may "
                     "not hold on a quiet machine")
    if len(held) < n_holdout:
        notes.append(f"only {len(held)} of the {n_holdout} requested held-out subnets are "
                     "measured")
    if len(train_subnets) < 3:
        notes.append("fewer than 3 training subnets: no composition-overhead model and no "
                     "whole-network predictors")
    if peaks is not None:
        notes.append(f"roofline peaks: {peaks.flops_per_s / 1e9:.1f} GFLOP/s, "
                     f"{peaks.bytes_per_s / 1e9:.1f} GB/s (torch matmul and copy)")
    comp = models[rp.MAIN]
    if isinstance(comp, ComposedLatency):  # always: the main predictor is layer-composed
        notes.append("composition overhead per workload: " + "; ".join(
            f"{k}: {v.kind} {[round(c, 3) for c in v.coef]} (LOO rel. sd {v.rel_sd:.3f})"
            for k, v in comp.overheads.items()))
    r = rp.PredictorReport(
        hw=t.hw.name, model=t.model, arch_key=t.arch_key, primary=t.primary.to_dict(),
        n_layer_samples=len(data.layers), n_train_subnets=len(train_subnets),
        n_holdout=len(held), latency=metrics, points=points, notes=notes)
    if efficiency:
        r.efficiency = rp.sample_efficiency(t.space, t.hw.dtype, t.primary, data, train_subnets,
                                            held, seed=seed)
    acc = _accuracy_samples(t, store, tasks)
    if acc is not None:
        r.accuracy = rp.evaluate_accuracy(t.space, acc[0], acc[1], seed)
    return r
