"""Subnet latency composed from layer latencies.

A subnet's latency at one workload is the sum of its decoder layers (each predicted by a
layer-level model from its width, KV groups and the workload) plus the fixed parts
(embedding and LM head, measured), corrected by a small composition-overhead model fitted on
a few whole-subnet measurements. The overhead model is chosen by leave-one-out error among
none / constant / linear in the number of layers / linear in layers and the layer sum.

Every predictor, composed or whole-network, answers `predict_subnets(specs)` with a
`SubnetPredictions`; the primary metric is composed member by member so the interval holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypedDict

import numpy as np

from hwnas.hw_profiles.workload import Workload
from hwnas.predictors.data import Primary, SubnetSample
from hwnas.predictors.features import layer_matrix
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SubnetSpec

Z90 = 1.6449  # two-sided 90% normal quantile


class LayerModel(Protocol):
    """What composing needs of a layer-level model: every member's latency (ms) of each
    layer-feature row, shape (n_members, n_rows). `LatencyPredictor`, the layer baselines and
    the roofline answer it."""

    def predict_members(self, X: np.ndarray) -> np.ndarray: ...


class FittableLayerModel(LayerModel, Protocol):
    """A `LayerModel` that learns from layer features and measured ms."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> object: ...


class SubnetLatencyModel(Protocol):
    """What the report and the search ask of any subnet latency predictor, composed
    (`ComposedLatency`) or whole-network (`WholeNetLatency`)."""

    def predict_subnets(self, specs: list[SubnetSpec]) -> SubnetPredictions: ...


@dataclass
class SubnetPredictions:
    """Per-workload and primary-metric predictions for a list of subnets (mean, 90% band)."""

    workloads: dict[str, np.ndarray]
    primary: np.ndarray
    low: np.ndarray
    high: np.ndarray
    in_domain: np.ndarray
    reasons: list[list[str]] = field(default_factory=list)


class OverheadDict(TypedDict):
    """`Overhead.to_dict()`, as the sidecar and `hwnas predictors train --json` hold it."""

    kind: str
    coef: list[float]
    rel_sd: float


@dataclass(frozen=True)
class Overhead:
    """Measured minus composed, as a function of (n_layers, composed sum)."""

    kind: str = "none"  # none | const | layers | layers_sum
    coef: tuple[float, ...] = ()
    rel_sd: float = 0.0  # leave-one-out sd of the relative error of the corrected total

    def design(self, n_layers: np.ndarray, total: np.ndarray) -> np.ndarray:
        return _design(self.kind, n_layers, total)

    def apply(self, n_layers: np.ndarray, total: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return total
        return total + self.design(n_layers, total) @ np.asarray(self.coef)

    def to_dict(self) -> OverheadDict:
        return {"kind": self.kind, "coef": list(self.coef), "rel_sd": self.rel_sd}

    @classmethod
    def from_dict(cls, d: OverheadDict) -> Overhead:
        return cls(d["kind"], tuple(d["coef"]), float(d["rel_sd"]))


def _design(kind: str, n: np.ndarray, total: np.ndarray) -> np.ndarray:
    ones = np.ones_like(n, dtype=float)
    cols = {"const": [ones], "layers": [ones, n], "layers_sum": [ones, n, total]}[kind]
    return np.column_stack(cols)


def fit_overhead(n_layers: np.ndarray, composed: np.ndarray, measured: np.ndarray) -> Overhead:
    """Pick the overhead form with the smallest leave-one-out relative error."""
    n = len(measured)
    best = Overhead("none", (), _rel_sd((composed - measured) / measured))
    best_err = _loo_err("none", n_layers, composed, measured)
    for kind, k in (("const", 1), ("layers", 2), ("layers_sum", 3)):
        if n < k + 2:
            break
        err = _loo_err(kind, n_layers, composed, measured)
        if err < best_err * 0.97:  # a more complex form must earn its place
            coef = np.linalg.lstsq(_design(kind, n_layers, composed), measured - composed,
                                   rcond=None)[0]
            best, best_err = Overhead(kind, tuple(float(c) for c in coef), err), err
    if best.kind != "none":
        best = Overhead(best.kind, best.coef, best_err)
    return best


def _loo_err(kind: str, n_layers: np.ndarray, composed: np.ndarray,
             measured: np.ndarray) -> float:
    if kind == "none":
        return _rel_sd((composed - measured) / measured)
    rel = []
    for i in range(len(measured)):
        m = np.arange(len(measured)) != i
        coef = np.linalg.lstsq(_design(kind, n_layers[m], composed[m]),
                               (measured - composed)[m], rcond=None)[0]
        pred = composed[i] + _design(kind, n_layers[i:i + 1], composed[i:i + 1]) @ coef
        rel.append((pred[0] - measured[i]) / measured[i])
    return _rel_sd(np.array(rel))


def _rel_sd(rel: np.ndarray) -> float:
    return float(np.sqrt(np.mean(rel ** 2))) if rel.size else 0.0


class ComposedLatency:
    """Layer model + fixed parts + overhead -> subnet latency at each workload."""

    def __init__(self, arch: ArchInfo, dtype: str, layer_model: LayerModel,
                 fixed_ms: dict[str, float], primary: Primary,
                 seen_choices: set[tuple[int, int]] | None = None,
                 overheads: dict[str, Overhead] | None = None) -> None:
        self.arch = arch
        self.dtype = dtype
        self.layer_model = layer_model
        self.fixed_ms = fixed_ms
        self.primary = primary
        self.seen_choices = seen_choices
        self.overheads = dict(overheads or {})
        self._tables: dict[Workload, dict[tuple[int, int], np.ndarray]] = {}
        self._inside: dict[tuple[tuple[int, int], Workload], bool] = {}

    def _table(self, wl: Workload, choices: set[tuple[int, int]]) -> dict[tuple[int, int],
                                                                          np.ndarray]:
        table = self._tables.setdefault(wl, {})
        todo = sorted(choices - set(table))
        if todo:
            X = layer_matrix(self.arch, [(w, k, wl) for w, k in todo], self.dtype)
            members = np.atleast_2d(self.layer_model.predict_members(X))
            for j, c in enumerate(todo):
                table[c] = members[:, j]
        return table

    def raw_members(self, specs: list[SubnetSpec], wl: Workload) -> np.ndarray:
        """(n_members, n_specs): sum of layers + fixed parts, before the overhead model."""
        choices = {c for s in specs for c in zip(s.intermediate_size, s.kv_heads, strict=True)}
        if not specs:
            return np.zeros((1, 0))
        table = self._table(wl, choices)
        fixed = self.fixed_ms[wl.name]
        cols = [sum((table[c] for c in zip(s.intermediate_size, s.kv_heads, strict=True)),
                    start=np.zeros(1)) + fixed for s in specs]
        return np.column_stack(cols)

    def members(self, specs: list[SubnetSpec], wl: Workload) -> np.ndarray:
        raw = self.raw_members(specs, wl)
        oh = self.overheads.get(wl.name, Overhead())
        n = np.array([s.num_layers for s in specs], dtype=float)
        # the overhead model is linear and can extrapolate below the measured fixed parts
        floor = self.fixed_ms.get(wl.name, 0.0)
        return np.maximum(np.vstack([oh.apply(n, row) for row in raw]), floor)

    def fit_overheads(self, subnets: tuple[SubnetSample, ...] | list[SubnetSample]
                      ) -> ComposedLatency:
        for wl in (self.primary.prefill, self.primary.decode):
            have = [s for s in subnets if wl.name in s.per_workload]
            if not have:
                self.overheads[wl.name] = Overhead()
                continue
            specs = [s.spec for s in have]
            composed = self.raw_members(specs, wl).mean(axis=0)
            measured = np.array([s.per_workload[wl.name] for s in have])
            n = np.array([s.num_layers for s in specs], dtype=float)
            self.overheads[wl.name] = fit_overhead(n, composed, measured)
        return self

    def predict_subnets(self, specs: list[SubnetSpec]) -> SubnetPredictions:
        p, d = self.primary.prefill, self.primary.decode
        mp, md = self.members(specs, p), self.members(specs, d)
        prim = self.primary.compose(mp, md)
        mean = prim.mean(axis=0)
        half = (np.percentile(prim, 95, axis=0) - np.percentile(prim, 5, axis=0)) / 2
        sd_p = self.overheads.get(p.name, Overhead()).rel_sd * mp.mean(axis=0)
        sd_d = self.overheads.get(d.name, Overhead()).rel_sd * md.mean(axis=0)
        spread = np.sqrt(half ** 2 + (Z90 * sd_p) ** 2
                         + (Z90 * self.primary.decode_tokens * sd_d) ** 2)
        reasons = [self.domain_reasons(s) for s in specs]
        return SubnetPredictions(workloads={p.name: mp.mean(axis=0), d.name: md.mean(axis=0)},
                                 primary=mean, low=mean - spread, high=mean + spread,
                                 in_domain=np.array([not r for r in reasons]), reasons=reasons)

    def domain_reasons(self, spec: SubnetSpec) -> list[str]:
        """Why a subnet lies outside the training data (empty when inside)."""
        choices = sorted(set(zip(spec.intermediate_size, spec.kv_heads, strict=True)))
        reasons = []
        if self.seen_choices is not None:
            reasons += [f"layer choice width={w}, kv_heads={k} was never profiled"
                        for w, k in choices if (w, k) not in self.seen_choices]
        check = getattr(self.layer_model, "in_domain", None)
        if check is not None:
            for wl in (self.primary.prefill, self.primary.decode):
                todo = [c for c in choices if (c, wl) not in self._inside]
                if todo:
                    X = layer_matrix(self.arch, [(w, k, wl) for w, k in todo], self.dtype)
                    for c, ok in zip(todo, check(X), strict=True):
                        self._inside[(c, wl)] = bool(ok)
                reasons += [f"width={w}, kv_heads={k} at {wl.name} lies outside the range of "
                            "the profiled layer features"
                            for w, k in choices if not self._inside[((w, k), wl)]]
        return reasons
