"""The predictor accuracy report: held-out metrics of every predictor and baseline for prefill,
decode and the primary metric; a sample-efficiency curve; the accuracy predictor against
Ridge/SVR. Plain values in, a `PredictorReport` out. Rendering lives in `markdown.py`, files
in `output.py`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import numpy as np

from hwnas.predictors import baselines
from hwnas.predictors.composed import ComposedLatency, FittableLayerModel, SubnetLatencyModel
from hwnas.predictors.data import AccuracySample, Primary, PrimaryDict, ProfileData, SubnetSample
from hwnas.predictors.estimators import AccuracyPredictor, LatencyPredictor
from hwnas.predictors.metrics import RegressionMetrics, regression_metrics
from hwnas.predictors.roofline import RooflineLayers, roofline_fixed_ms
from hwnas.predictors.train import accuracy_xy, cross_validated, fit_composed, xgb_layers
from hwnas.profilers.peaks import Peaks
from hwnas.supernet.space import SearchSpace

MAIN = "xgboost-layers"


class LatencyPoints(TypedDict):
    """One predictor's primary metric on every held-out subnet (ms), for the scatter plot."""

    measured: list[float]
    predicted: list[float]
    low: list[float]
    high: list[float]


class EfficiencyRow(TypedDict):
    """One point of the sample-efficiency curve: a predictor trained on a random subset of
    `n_layer_samples` layer records (draw `repeat`), judged on the held-out primary metric."""

    predictor: str
    n_layer_samples: float
    repeat: float
    timed_s: float  # timed profiling seconds those layer records cost
    mape: float
    within_10: float
    spearman: float


class AccuracyReport(TypedDict):
    """The accuracy predictor against Ridge/SVR: out-of-fold metrics and predictions."""

    tasks: list[str]
    n_subnets: int
    folds: int
    target_range: list[float]  # [min, max] of the evaluated subnets' targets
    metrics: dict[str, RegressionMetrics]  # predictor -> metrics
    points: dict[str, list[float]]  # "measured", then predictor -> out-of-fold predictions


LatencyMetrics = dict[str, dict[str, RegressionMetrics]]
"""predictor -> target (a workload name or "primary") -> metrics."""


@dataclass
class PredictorReport:
    hw: str
    model: str
    arch_key: str
    primary: PrimaryDict
    n_layer_samples: int
    n_train_subnets: int
    n_holdout: int
    latency: LatencyMetrics
    points: dict[str, LatencyPoints]  # predictor -> held-out points
    efficiency: list[EfficiencyRow] = field(default_factory=list)
    accuracy: AccuracyReport | None = None  # None: no evaluations (`{}` in report.json)
    notes: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """report.json's content."""
        out = asdict(self)
        if self.accuracy is None:
            out["accuracy"] = {}
        return out

    def best_baseline(self, target: str = "primary") -> tuple[str, float]:
        rows = [(n, m[target]["mape"]) for n, m in self.latency.items()
                if not n.startswith("xgboost")]
        return min(rows, key=lambda r: r[1]) if rows else ("", float("nan"))


def latency_predictors(space: SearchSpace, dtype: str, primary: Primary, data: ProfileData,
                       train: list[SubnetSample], peaks: Peaks | None,
                       seed: int = 0) -> dict[str, SubnetLatencyModel]:
    """Every latency predictor and baseline, fitted (the main one, `MAIN`, first and a
    `ComposedLatency`). Whole-network ones need >= 3 subnets."""
    arch = space.arch
    out: dict[str, SubnetLatencyModel] = {
        MAIN: fit_composed(arch, dtype, primary, data, train, xgb_layers(seed)),
        "linear-flops-bytes": fit_composed(arch, dtype, primary, data, train,
                                           baselines.LinearLayers()),
        "lookup-nearest": fit_composed(arch, dtype, primary, data, train,
                                       baselines.LookupLayers()),
    }
    if peaks is not None:
        fixed = {wl.name: roofline_fixed_ms(arch, wl, dtype, peaks)
                 for wl in (primary.prefill, primary.decode)}
        out["roofline"] = ComposedLatency(arch, dtype, RooflineLayers(peaks), fixed, primary)
    if len(train) >= 3:
        makers: dict[str, Callable[[], baselines.Regressor]] = {
            "xgboost-wholenet": lambda: LatencyPredictor(n_estimators=200, max_depth=3,
                                                         random_state=seed),
            "ridge-wholenet": baselines.ridge, "svr-wholenet": baselines.svr}
        for name, make in makers.items():
            out[name] = baselines.WholeNetLatency(space, dtype, primary, make).fit(train)
    return out


def evaluate_latency(models: Mapping[str, SubnetLatencyModel], primary: Primary,
                     holdout: list[SubnetSample]
                     ) -> tuple[LatencyMetrics, dict[str, LatencyPoints]]:
    specs = [s.spec for s in holdout]
    measured = {wl.name: np.array([s.per_workload[wl.name] for s in holdout])
                for wl in (primary.prefill, primary.decode)}
    meas_primary = primary.compose(measured[primary.prefill.name], measured[primary.decode.name])
    metrics: LatencyMetrics = {}
    points: dict[str, LatencyPoints] = {}
    for name, model in models.items():
        pred = model.predict_subnets(specs)
        m = {wl: regression_metrics(measured[wl], pred.workloads[wl]) for wl in measured}
        m["primary"] = regression_metrics(meas_primary, pred.primary, pred.low, pred.high)
        m["primary"]["in_domain_share"] = float(np.mean(pred.in_domain))
        metrics[name] = m
        points[name] = {"measured": meas_primary.tolist(), "predicted": pred.primary.tolist(),
                        "low": pred.low.tolist(), "high": pred.high.tolist()}
    return metrics, points


def sample_efficiency(space: SearchSpace, dtype: str, primary: Primary, data: ProfileData,
                      train: list[SubnetSample], holdout: list[SubnetSample],
                      sizes: list[int] | None = None, repeats: int = 3,
                      seed: int = 0) -> list[EfficiencyRow]:
    """Primary-metric accuracy against the number of layer samples used for training (random
    subsets, `repeats` draws each), with the timed profiling seconds those samples cost."""
    n_all = len(data.layers)
    if sizes is None:
        sizes = sorted({max(4, int(round(n_all * f))) for f in
                        (0.05, 0.1, 0.2, 0.35, 0.5, 0.75)} | {n_all})
    rng = np.random.default_rng(seed)
    makers: dict[str, Callable[[], FittableLayerModel]] = {
        MAIN: lambda: xgb_layers(seed), "lookup-nearest": baselines.LookupLayers,
        "linear-flops-bytes": baselines.LinearLayers}
    rows: list[EfficiencyRow] = []
    for size in sizes:
        for rep in range(1 if size >= n_all else repeats):
            idx = rng.choice(n_all, size=min(size, n_all), replace=False)
            subset = [data.layers[i] for i in sorted(idx)]
            for name, make in makers.items():
                comp = fit_composed(space.arch, dtype, primary, data, train, make(), subset)
                res, _ = evaluate_latency({name: comp}, primary, holdout)
                m = res[name]["primary"]
                rows.append({"predictor": name, "n_layer_samples": float(len(subset)),
                             "repeat": float(rep),
                             "timed_s": float(sum(s.timed_s for s in subset)),
                             "mape": m["mape"], "within_10": m["within_10"],
                             "spearman": m["spearman"]})
    return rows


def evaluate_accuracy(space: SearchSpace, samples: list[AccuracySample], tasks: list[str],
                      seed: int = 0) -> AccuracyReport:
    """Out-of-fold (5-fold) predictions on evaluated subnets: XGBoost against Ridge and SVR."""
    X, y = accuracy_xy(space, samples)
    makers: dict[str, Callable[[], baselines.Regressor]] = {
        "xgboost": lambda: AccuracyPredictor(random_state=seed),
        "ridge": baselines.ridge, "svr": baselines.svr}
    out: AccuracyReport = {"tasks": tasks, "n_subnets": len(samples), "folds": 5,
                           "target_range": [float(y.min()), float(y.max())], "metrics": {},
                           "points": {"measured": y.tolist()}}
    for name, make in makers.items():
        pred = cross_validated(make, X, y, folds=5, seed=seed)
        out["metrics"][name] = regression_metrics(y, pred)
        out["points"][name] = pred.tolist()
    return out
