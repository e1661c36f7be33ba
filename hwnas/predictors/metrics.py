"""Held-out accuracy metrics of a predictor: MAPE, RMSE, share within ±5% / ±10%, Spearman,
Kendall, MAE and interval coverage."""

from __future__ import annotations

from typing import NotRequired, TypedDict

import numpy as np
from numpy.typing import ArrayLike


class RegressionMetrics(TypedDict):
    """One predictor's metrics on one target (shares in 0..1, MAPE and max APE in %)."""

    n: float
    mape: float
    rmse: float
    mae: float
    within_5: float
    within_10: float
    max_ape: float
    spearman: float
    kendall: float
    interval_coverage: NotRequired[float]  # only when an interval was given
    in_domain_share: NotRequired[float]  # set by the report for the primary metric


def regression_metrics(measured: ArrayLike, predicted: ArrayLike, low: ArrayLike | None = None,
                       high: ArrayLike | None = None) -> RegressionMetrics:
    y = np.asarray(measured, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need as many predictions as measurements, got {p.shape} vs {y.shape}")
    rel = np.abs(p - y) / np.maximum(np.abs(y), 1e-12)
    out: RegressionMetrics = {
        "n": float(y.size),
        "mape": float(rel.mean() * 100),
        "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
        "mae": float(np.mean(np.abs(p - y))),
        "within_5": float((rel <= 0.05).mean()),
        "within_10": float((rel <= 0.10).mean()),
        "max_ape": float(rel.max() * 100),
        "spearman": _rank_corr(y, p, "spearman"),
        "kendall": _rank_corr(y, p, "kendall"),
    }
    if low is not None and high is not None:
        lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        out["interval_coverage"] = float(((y >= lo) & (y <= hi)).mean())
    return out


def _rank_corr(y: np.ndarray, p: np.ndarray, kind: str) -> float:
    from scipy import stats

    if y.size < 3 or np.ptp(y) == 0 or np.ptp(p) == 0:
        return float("nan")
    fn = stats.spearmanr if kind == "spearman" else stats.kendalltau
    return float(fn(y, p).statistic)
