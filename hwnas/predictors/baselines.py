"""Baselines reported beside the XGBoost predictors.

Layer-level (composed into subnets exactly like XGBoost, same fixed parts and overhead model):
- `LinearLayers`: linear regression of layer latency on FLOPs and bytes, one fit per phase;
- `LookupLayers`: a lookup table; a query takes the mean of the nearest measured layers.
Whole-network (trained on whole-subnet measurements, per workload):
- `WholeNetLatency` with XGBoost (`LatencyPredictor`), Ridge or SVR (as Intel's DyNAS-T).
The roofline baseline lives in `roofline.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from hwnas.predictors.composed import SubnetPredictions
from hwnas.predictors.data import Primary, SubnetSample
from hwnas.predictors.features import LAYER_FEATURES, subnet_matrix
from hwnas.supernet.space import SearchSpace, SubnetSpec

if TYPE_CHECKING:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

_I = {n: i for i, n in enumerate(LAYER_FEATURES)}
_LINEAR_COLS = [_I["flops"], _I["weight_bytes"], _I["kv_bytes"], _I["act_bytes"]]
_LOOKUP_COLS = [_I["width"], _I["kv_heads"], _I["tokens"], _I["context"], _I["batch"]]


class Regressor(Protocol):
    """A scikit-learn regressor as the whole-network predictor uses it: `fit` returns the
    fitted regressor itself (`LatencyPredictor`, Ridge or SVR pipelines)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Regressor: ...
    def predict(self, X: np.ndarray) -> np.ndarray: ...


class LinearLayers:
    """ms = a + b*FLOPs + c*weight bytes + d*KV bytes + e*activation bytes, per phase."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearLayers:
        from sklearn.linear_model import LinearRegression

        self.models_: dict[float, LinearRegression] = {}
        for phase in np.unique(X[:, _I["is_decode"]]):
            m = X[:, _I["is_decode"]] == phase
            self.models_[float(phase)] = LinearRegression().fit(X[m][:, _LINEAR_COLS], y[m])
        return self

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        for phase in np.unique(X[:, _I["is_decode"]]):
            m = X[:, _I["is_decode"]] == phase
            model = self.models_.get(float(phase)) or next(iter(self.models_.values()))
            out[m] = model.predict(X[m][:, _LINEAR_COLS])
        return np.maximum(out, 1e-6)[None, :]


class LookupLayers:
    """Sum-of-lookups: each query layer takes the mean latency of the measured layers nearest
    to it (same phase; distance in log width, KV groups, tokens, context, batch)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> LookupLayers:
        self.keys_ = np.log1p(X[:, _LOOKUP_COLS])
        self.phase_ = X[:, _I["is_decode"]]
        self.y_ = np.asarray(y, dtype=float)
        return self

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        q = np.log1p(X[:, _LOOKUP_COLS])
        out = np.empty(len(X))
        for j in range(len(X)):
            m = self.phase_ == X[j, _I["is_decode"]]
            if not m.any():
                m = np.ones_like(self.phase_, dtype=bool)
            d = np.abs(self.keys_[m] - q[j]).sum(axis=1)
            out[j] = self.y_[m][d <= d.min() + 1e-12].mean()
        return out[None, :]


def ridge() -> Pipeline:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))


def svr() -> TransformedTargetRegressor:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return TransformedTargetRegressor(make_pipeline(StandardScaler(), SVR(C=10.0, epsilon=0.05)),
                                      transformer=StandardScaler())


class WholeNetLatency:
    """One regressor per primary workload on subnet features (encoding + analytic totals)."""

    def __init__(self, space: SearchSpace, dtype: str, primary: Primary,
                 make: Callable[[], Regressor]) -> None:
        self.space = space
        self.dtype = dtype
        self.primary = primary
        self.make = make

    def fit(self, subnets: list[SubnetSample] | tuple[SubnetSample, ...]) -> WholeNetLatency:
        self.models_: dict[str, Regressor] = {}
        for wl in (self.primary.prefill, self.primary.decode):
            have = [s for s in subnets if wl.name in s.per_workload]
            if len(have) < 3:
                raise ValueError(f"whole-network predictor needs >= 3 measured subnets at "
                                 f"{wl.name}, got {len(have)}")
            X = subnet_matrix(self.space, [s.spec for s in have], self.dtype)
            y = np.array([s.per_workload[wl.name] for s in have])
            self.models_[wl.name] = self.make().fit(X, y)
        self.domain_ = subnet_matrix(self.space, [s.spec for s in subnets], self.dtype)
        return self

    def _members(self, name: str, X: np.ndarray) -> np.ndarray:
        model = self.models_[name]
        if hasattr(model, "predict_members"):
            return np.asarray(model.predict_members(X))
        return np.asarray(model.predict(X))[None, :]

    def predict_subnets(self, specs: list[SubnetSpec]) -> SubnetPredictions:
        X = subnet_matrix(self.space, specs, self.dtype)
        p, d = self.primary.prefill, self.primary.decode
        mp, md = self._members(p.name, X), self._members(d.name, X)
        prim = self.primary.compose(mp, md)
        mean = prim.mean(axis=0)
        if prim.shape[0] > 1:
            lo, hi = np.percentile(prim, 5, axis=0), np.percentile(prim, 95, axis=0)
        else:
            lo = hi = mean
        lo_d, hi_d = self.domain_.min(axis=0), self.domain_.max(axis=0)
        inside = ((X >= lo_d) & (X <= hi_d)).all(axis=1)
        reasons = [[] if ok else ["subnet features outside the measured subnets' range"]
                   for ok in inside]
        return SubnetPredictions({p.name: mp.mean(axis=0), d.name: md.mean(axis=0)}, mean,
                                 lo, hi, inside, reasons)
