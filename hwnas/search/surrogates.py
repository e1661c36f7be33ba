"""Predictors of each measured value, fitted on the run's own real evaluations.

- accuracy / perplexity (what is unknown): the better, by cross-validated rank correlation on
  the run's evaluations so far, of a Bayesian ridge on additive per-layer features (dropped,
  MLP width cut, KV cut: it extrapolates to more compressed subnets and its posterior spread
  is calibrated; with the model's layer order, a zero-cost prior: how influential the cut
  layers are) and an XGBoost ensemble (`hwnas.predictors.AccuracyPredictor`) on the subnet
  features (the members' spread is its uncertainty). See `ChosenSurrogate`.
- latency: the hardware profile's layer-composed predictor (trained once on the profiler's
  layer measurements) calibrated on the run's measured latencies by a median ratio. The search
  takes it as known (`known`: no exploration bonus is spent on its spread, which is the
  profile's error, not something another evaluation would teach); without one, the chosen
  model on log(latency).
- params, memory: exact (analytic), no uncertainty.

Every fit is a pure function of its training set and seed, and carries a version (a hash of
both) that the run records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwnas.supernet.space import SearchSpace, SubnetSpec

Z90 = 1.6449
Exact = Callable[[SubnetSpec], dict[str, float]]


@dataclass
class Prediction:
    mean: np.ndarray
    sd: np.ndarray


def version(kind: str, specs: Sequence[SubnetSpec], y: Sequence[float], seed: int) -> str:
    blob = json.dumps([kind, seed, [s.key() for s in specs], [round(float(v), 9) for v in y]])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class XGBSurrogate:
    """An XGBoost ensemble on the subnet features; the members' spread is the uncertainty.
    (`layer_order` is accepted for a common signature: trees need no prior to split on.)"""

    def __init__(self, space: SearchSpace, key: str, seed: int, log: bool = False,
                 layer_order: Sequence[int] | None = None) -> None:
        self.space, self.key, self.seed, self.log = space, key, seed, log
        self.version = ""

    def fit(self, specs: list[SubnetSpec], y: np.ndarray) -> XGBSurrogate:
        from hwnas.predictors.estimators import AccuracyPredictor
        from hwnas.predictors.features import subnet_matrix

        self.est_ = AccuracyPredictor(n_estimators=150, max_depth=3, random_state=self.seed,
                                      log_target=self.log)
        self.est_.fit(subnet_matrix(self.space, specs), y)
        self.version = version(f"xgb:{self.key}", specs, list(y), self.seed)
        return self

    def predict(self, specs: list[SubnetSpec]) -> Prediction:
        from hwnas.predictors.features import subnet_matrix

        m = self.est_.predict_members(subnet_matrix(self.space, specs))
        return Prediction(m.mean(axis=0), m.std(axis=0))


def latency_floor(bundle: Any) -> float:
    """No subnet is faster than the model's fixed parts (embedding and LM head) alone."""
    c = bundle.composed
    return float(c.primary.compose(c.fixed_ms[c.primary.prefill.name],
                                   c.fixed_ms[c.primary.decode.name]))


def predicted_latency(bundle: Any, specs: list[SubnetSpec]) -> tuple[np.ndarray, np.ndarray]:
    """The profile predictor's primary metric and its spread, floored at the fixed parts (a
    composition-overhead model extrapolating below them says nothing real)."""
    p = bundle.predict(specs)
    return (np.maximum(p.primary, latency_floor(bundle)),
            np.asarray((p.high - p.low) / (2 * Z90), dtype=float))


class CalibratedLatency:
    """The profile's composed latency predictor times a calibration ratio fitted on the
    run's measured latencies (median of measured / predicted)."""

    known = True

    def __init__(self, bundle: Any, key: str = "latency_ms") -> None:
        self.bundle, self.key = bundle, key
        self.ratio = 1.0
        self.version = ""
        self._cache: dict[str, tuple[float, float]] = {}

    def raw(self, specs: list[SubnetSpec]) -> tuple[np.ndarray, np.ndarray]:
        todo = [s for s in specs if s.key() not in self._cache]
        if todo:
            mean, sd = predicted_latency(self.bundle, todo)
            for i, s in enumerate(todo):
                self._cache[s.key()] = (float(mean[i]), float(sd[i]))
        vals = np.array([self._cache[s.key()] for s in specs]).reshape(-1, 2)
        return vals[:, 0], vals[:, 1]

    def fit(self, specs: list[SubnetSpec], y: np.ndarray) -> CalibratedLatency:
        mean, _ = self.raw(specs)
        self.ratio = float(np.median(np.asarray(y) / mean)) if len(specs) else 1.0
        self.version = version(f"composed:{self.bundle.meta.get('data_hash', '')}", specs,
                               list(y), 0)
        return self

    def predict(self, specs: list[SubnetSpec]) -> Prediction:
        mean, sd = self.raw(specs)
        return Prediction(mean * self.ratio, sd * self.ratio)


def rank_weights(n_layers: int, layer_order: Sequence[int]) -> np.ndarray:
    """Each layer's place in `layer_order` (least influential first) as 0..1."""
    w = np.zeros(n_layers)
    w[list(layer_order)] = np.arange(n_layers) / max(1, n_layers - 1)
    return w


def additive_features(space: SearchSpace, specs: Sequence[SubnetSpec],
                      layer_order: Sequence[int] | None = None) -> np.ndarray:
    """Per base layer: dropped (0/1), the MLP width cut and the KV-group cut (shares of the
    full layer's, 0 for a dropped layer, so a dropped layer and a full-width one never share
    a value); then the three sums over layers, which carry the trend a sparse sample cannot
    resolve per layer. The full model is the zero row: a linear model on these
    extrapolates to more compressed subnets.

    With `layer_order` (least influential first: the model's block influence, a zero-cost
    prior), two more: the drops and the width cuts summed with each layer's place in that
    order as its weight, so a few evaluations already tell cutting an influential layer
    from cutting one that barely changes the residual stream. (Offline, on 33 runs' 6,133
    perplexity evaluations: out-of-sample Spearman from the first 10 evaluations 0.867 ->
    0.879, from the first 25 0.877 -> 0.903.)"""
    n = space.arch.num_layers
    wmax, kmax = space.width_choices[-1], space.kv_choices[-1]
    X = np.zeros((len(specs), 3 * n + 3))
    for r, s in enumerate(specs):
        X[r, 0:3 * n:3] = 1.0
        for layer, w, k in zip(s.layers, s.intermediate_size, s.kv_heads, strict=True):
            X[r, 3 * layer] = 0.0
            X[r, 3 * layer + 1] = 1.0 - w / wmax
            X[r, 3 * layer + 2] = 1.0 - k / kmax
        X[r, 3 * n:] = [X[r, 0:3 * n:3].sum(), X[r, 1:3 * n:3].sum(), X[r, 2:3 * n:3].sum()]
    if layer_order is None:
        return X
    rw = rank_weights(n, layer_order)
    return np.hstack([X, (X[:, 0:3 * n:3] @ rw)[:, None], (X[:, 1:3 * n:3] @ rw)[:, None]])


class RidgeSurrogate:
    """A Bayesian ridge (evidence-maximised prior and noise) on `additive_features` (with the
    layer-order prior when one is given); the posterior predictive spread is the
    uncertainty."""

    def __init__(self, space: SearchSpace, key: str, seed: int, log: bool = False,
                 layer_order: Sequence[int] | None = None) -> None:
        self.space, self.key, self.seed, self.log = space, key, seed, log
        self.layer_order = None if layer_order is None else tuple(layer_order)
        self.version = ""

    def _features(self, specs: Sequence[SubnetSpec]) -> np.ndarray:
        return additive_features(self.space, specs, self.layer_order)

    def fit(self, specs: list[SubnetSpec], y: np.ndarray) -> RidgeSurrogate:
        from sklearn.linear_model import BayesianRidge

        t = np.log(y) if self.log else np.asarray(y, dtype=float)
        self.est_ = BayesianRidge(max_iter=500).fit(self._features(specs), t)
        kind = "ridge" if self.layer_order is None else f"ridge-prior{list(self.layer_order)}"
        self.version = version(f"{kind}:{self.key}", specs, list(y), self.seed)
        return self

    def predict(self, specs: list[SubnetSpec]) -> Prediction:
        m, sd = self.est_.predict(self._features(specs), return_std=True)
        if not self.log:
            return Prediction(m, sd)
        # a lognormal's median and the spread of its central 68%
        return Prediction(np.exp(m), np.exp(m) * np.sinh(sd))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


MODELS: dict[str, type[XGBSurrogate] | type[RidgeSurrogate]] = {
    "ridge": RidgeSurrogate, "xgb": XGBSurrogate}


class ChosenSurrogate:
    """The candidate model (`MODELS`) whose out-of-fold predictions rank the run's
    evaluations best (Spearman, 5 folds, a fixed split per seed); ties and fewer than
    `min_cv` points go to the first (ridge). Its name and the scores are in `chosen` and
    `cv`, and in the version the run records."""

    def __init__(self, space: SearchSpace, key: str, seed: int, log: bool = False,
                 candidates: Sequence[str] = ("ridge", "xgb"), min_cv: int = 8,
                 layer_order: Sequence[int] | None = None) -> None:
        self.space, self.key, self.seed, self.log = space, key, seed, log
        self.layer_order = layer_order
        self.candidates, self.min_cv = tuple(candidates), min_cv
        self.chosen, self.version = self.candidates[0], ""
        self.cv: dict[str, float] = {}

    def fit(self, specs: list[SubnetSpec], y: np.ndarray) -> ChosenSurrogate:
        y = np.asarray(y, dtype=float)
        self.cv = {}
        if len(specs) >= self.min_cv and len(self.candidates) > 1:
            folds = np.random.default_rng(self.seed).permutation(len(specs)) % 5
            for name in self.candidates:
                oof = np.zeros(len(specs))
                for f in range(5):
                    tr, te = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
                    m = self._model(name)
                    m.fit([specs[i] for i in tr], y[tr])
                    oof[te] = m.predict([specs[i] for i in te]).mean
                self.cv[name] = round(spearman(oof, y), 6)
            self.chosen = max(self.candidates,
                              key=lambda n: (self.cv[n], -self.candidates.index(n)))
        self.model_ = self._model(self.chosen)
        self.model_.fit(specs, y)
        self.version = f"{self.chosen}:{self.model_.version}"
        return self

    def _model(self, name: str) -> XGBSurrogate | RidgeSurrogate:
        return MODELS[name](self.space, self.key, self.seed, self.log, self.layer_order)

    def predict(self, specs: list[SubnetSpec]) -> Prediction:
        return self.model_.predict(specs)


class ExactSurrogate:
    known = True

    def __init__(self, exact: Exact, key: str) -> None:
        self.exact, self.key, self.version = exact, key, "exact"

    def fit(self, specs: list[SubnetSpec], y: np.ndarray) -> ExactSurrogate:
        return self

    def predict(self, specs: list[SubnetSpec]) -> Prediction:
        v = np.array([self.exact(s)[self.key] for s in specs], dtype=float)
        return Prediction(v, np.zeros_like(v))


EXACT_KEYS = ("params", "memory_bytes")


class Surrogates:
    """One fitted predictor per measured key the run needs; predictions cached by subnet."""

    def __init__(self, space: SearchSpace, keys: Sequence[str], exact: Exact,
                 latency_bundle: Any, seed: int,
                 quality_models: Sequence[str] = ("ridge", "xgb"),
                 layer_order: Sequence[int] | None = None) -> None:
        self.space, self.keys, self.exact = space, list(keys), exact
        self.models: dict[str, Any] = {}
        for k in self.keys:
            if k in EXACT_KEYS:
                self.models[k] = ExactSurrogate(exact, k)
            elif k == "latency_ms" and latency_bundle is not None:
                self.models[k] = CalibratedLatency(latency_bundle)
            else:
                self.models[k] = ChosenSurrogate(space, k, seed,
                                                 log=k in ("latency_ms", "perplexity"),
                                                 candidates=quality_models,
                                                 layer_order=layer_order)
        self._cache: dict[str, dict[str, tuple[float, float]]] = {}

    def fit(self, specs: list[SubnetSpec], values: list[dict[str, float]]) -> Surrogates:
        for k, m in self.models.items():
            m.fit(specs, np.array([v[k] for v in values], dtype=float))
        self._cache.clear()
        return self

    def known(self) -> set[str]:
        """Keys whose values the search takes as known (exact, or the profile's predictor):
        their spread earns no exploration."""
        return {k for k, m in self.models.items() if getattr(m, "known", False)}

    def versions(self) -> dict[str, str]:
        return {k: m.version for k, m in self.models.items()}

    def predict(self, specs: list[SubnetSpec]) -> tuple[list[dict[str, float]],
                                                         list[dict[str, float]]]:
        """(means, sds): one dict per spec, keyed like the measured values."""
        todo = list({s.key(): s for s in specs if s.key() not in self._cache}.values())
        if todo:
            preds = {k: m.predict(todo) for k, m in self.models.items()}
            for i, s in enumerate(todo):
                self._cache[s.key()] = {k: (float(p.mean[i]), float(p.sd[i]))
                                        for k, p in preds.items()}
        rows = [self._cache[s.key()] for s in specs]
        return ([{k: v[0] for k, v in r.items()} for r in rows],
                [{k: v[1] for k, v in r.items()} for r in rows])
