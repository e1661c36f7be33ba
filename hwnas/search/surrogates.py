"""Predictors of each measured value, fitted on the run's own real evaluations.

- accuracy / perplexity: an XGBoost ensemble (`hwnas.predictors.AccuracyPredictor`) on the
  subnet features; the members' spread is the uncertainty.
- latency: the hardware profile's layer-composed predictor (trained once on the profiler's
  layer measurements) calibrated on the run's measured latencies by a median ratio; without
  one, the same XGBoost ensemble on log(latency).
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
    def __init__(self, space: SearchSpace, key: str, seed: int, log: bool = False) -> None:
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


class ExactSurrogate:
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
                 latency_bundle: Any, seed: int) -> None:
        self.space, self.keys, self.exact = space, list(keys), exact
        self.models: dict[str, Any] = {}
        for k in self.keys:
            if k in EXACT_KEYS:
                self.models[k] = ExactSurrogate(exact, k)
            elif k == "latency_ms" and latency_bundle is not None:
                self.models[k] = CalibratedLatency(latency_bundle)
            else:
                self.models[k] = XGBSurrogate(space, k, seed,
                                              log=k in ("latency_ms", "perplexity"))
        self._cache: dict[str, dict[str, tuple[float, float]]] = {}

    def fit(self, specs: list[SubnetSpec], values: list[dict[str, float]]) -> Surrogates:
        for k, m in self.models.items():
            m.fit(specs, np.array([v[k] for v in values], dtype=float))
        self._cache.clear()
        return self

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
