"""Fit the predictors from typed data (see `data.py`): the composed XGBoost latency predictor,
the whole-network one, the layer-level baselines and the accuracy predictor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from hwnas.predictors.baselines import Regressor, WholeNetLatency
from hwnas.predictors.composed import ComposedLatency, FittableLayerModel, SubnetPredictions
from hwnas.predictors.data import AccuracySample, LayerSample, Primary, ProfileData, SubnetSample
from hwnas.predictors.estimators import AccuracyPredictor, LatencyPredictor
from hwnas.predictors.features import LAYER_MONOTONE, layer_matrix, subnet_matrix
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SearchSpace, SubnetSpec


def layer_xy(arch: ArchInfo, dtype: str,
             samples: Sequence[LayerSample]) -> tuple[np.ndarray, np.ndarray]:
    X = layer_matrix(arch, [(s.width, s.kv_heads, s.workload) for s in samples], dtype)
    return X, np.array([s.ms for s in samples], dtype=float)


def xgb_layers(seed: int = 0) -> LatencyPredictor:
    return LatencyPredictor(monotone=LAYER_MONOTONE, random_state=seed)


def fit_composed(arch: ArchInfo, dtype: str, primary: Primary, data: ProfileData,
                 train_subnets: Sequence[SubnetSample], layer_model: FittableLayerModel,
                 layers: Sequence[LayerSample] | None = None) -> ComposedLatency:
    """Fit `layer_model` (anything with fit / predict_members) on the layer samples and
    compose it with the measured fixed parts and an overhead model from `train_subnets`."""
    samples = data.layers if layers is None else layers
    X, y = layer_xy(arch, dtype, samples)
    layer_model.fit(X, y)
    seen = {(s.width, s.kv_heads) for s in samples}
    comp = ComposedLatency(arch, dtype, layer_model, data.fixed_ms, primary, seen_choices=seen)
    return comp.fit_overheads(list(train_subnets))


class BundleMeta(TypedDict, total=False):
    """What a latency bundle knows of its training data. Freshly trained (`train_latency`):
    `data_hash`; loaded (`persist.load_latency`): the sidecar's `training_data_hash`,
    `metrics`, `hw_profile` and `model` as well."""

    n_layer_samples: int | None
    n_train_subnets: int | None
    data_hash: str
    training_data_hash: str | None
    fingerprint: dict[str, Any] | None
    statistic: str | None
    metrics: dict[str, Any] | None
    hw_profile: dict[str, Any] | None
    model: str | None


@dataclass
class LatencyBundle:
    """The trained latency predictors of one hardware profile and model shape."""

    hw: str
    arch: ArchInfo
    dtype: str
    primary: Primary
    composed: ComposedLatency
    wholenet: WholeNetLatency | None
    meta: BundleMeta = field(default_factory=lambda: BundleMeta())

    def predict(self, specs: list[SubnetSpec]) -> SubnetPredictions:
        return self.composed.predict_subnets(specs)


def train_latency(hw_name: str, space: SearchSpace, dtype: str, primary: Primary,
                  data: ProfileData, train_subnets: Sequence[SubnetSample],
                  seed: int = 0) -> LatencyBundle:
    arch = space.arch
    composed = fit_composed(arch, dtype, primary, data, train_subnets, xgb_layers(seed))
    wholenet = None
    if len(train_subnets) >= 3:
        wholenet = WholeNetLatency(space, dtype, primary, lambda: LatencyPredictor(
            n_estimators=200, max_depth=3, random_state=seed)).fit(list(train_subnets))
    meta: BundleMeta = {"n_layer_samples": len(data.layers), "n_train_subnets": len(train_subnets),
            "data_hash": data.data_hash, "fingerprint": data.fingerprint,
            "statistic": data.statistic}
    return LatencyBundle(hw_name, arch, dtype, primary, composed, wholenet, meta)


# ---- accuracy ---------------------------------------------------------------------------------
def accuracy_xy(space: SearchSpace, samples: Sequence[AccuracySample],
                dtype: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    X = subnet_matrix(space, [s.spec for s in samples], dtype)
    return X, np.array([s.accuracy for s in samples], dtype=float)


def train_accuracy(space: SearchSpace, samples: Sequence[AccuracySample],
                   seed: int = 0) -> AccuracyPredictor:
    X, y = accuracy_xy(space, samples)
    return AccuracyPredictor(random_state=seed).fit(X, y)


def cross_validated(make: Callable[[], Regressor], X: np.ndarray, y: np.ndarray, folds: int = 5,
                    seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions: every sample is predicted by a model that never saw it."""
    from sklearn.model_selection import KFold

    out = np.empty(len(y))
    for tr, te in KFold(n_splits=min(folds, len(y)), shuffle=True,
                        random_state=seed).split(X):
        out[te] = make().fit(X[tr], y[tr]).predict(X[te])
    return out
