"""scikit-learn estimators wrapping XGBoost: `LatencyPredictor` and `AccuracyPredictor`.

Both are ensembles of `xgboost.XGBRegressor` members trained on bootstrap resamples with
different seeds: the mean is the prediction, the spread between members the uncertainty.
They follow the scikit-learn contract (`__init__` only stores arguments, `fit` returns self,
learned state ends in `_`, `predict` refuses to run unfitted) and record the range of every
training feature so that a query outside it is flagged as out of domain.

`LatencyPredictor` works on one row per decoder layer x workload (see `features.py`) and fits
log(ms), so its errors are relative; `AccuracyPredictor` works on one row per subnet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

if TYPE_CHECKING:
    from sklearn.utils import Tags
    from xgboost import XGBRegressor


class _XGBEnsemble(RegressorMixin, BaseEstimator):
    _log_default = False

    def __init__(self, n_estimators: int = 300, max_depth: int = 5, learning_rate: float = 0.05,
                 n_members: int = 5, bootstrap: bool = True, log_target: bool | None = None,
                 monotone: tuple[int, ...] | None = None, random_state: int = 0,
                 n_jobs: int = 1) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_members = n_members
        self.bootstrap = bootstrap
        self.log_target = log_target
        self.monotone = monotone
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ---- fitting ---------------------------------------------------------------------------
    def _uses_log(self) -> bool:
        return self._log_default if self.log_target is None else bool(self.log_target)

    def _member(self, seed: int) -> XGBRegressor:
        from xgboost import XGBRegressor

        kw: dict[str, str] = {}
        if self.monotone is not None:
            if len(self.monotone) != self.n_features_in_:
                raise ValueError(f"monotone has {len(self.monotone)} entries but X has "
                                 f"{self.n_features_in_} features")
            kw["monotone_constraints"] = "(" + ",".join(str(int(m)) for m in self.monotone) + ")"
        return XGBRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                            learning_rate=self.learning_rate, subsample=0.9,
                            random_state=seed, n_jobs=self.n_jobs, tree_method="hist",
                            verbosity=0, **kw)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        if not isinstance(self.n_members, int) or self.n_members < 1:
            raise ValueError(f"n_members must be an integer >= 1, got {self.n_members!r}")
        Xv: np.ndarray
        Xv, yv = validate_data(self, X, y, y_numeric=True)
        target = np.asarray(yv, dtype=float)
        if self._uses_log():
            if (target <= 0).any():
                raise ValueError("log_target=True needs strictly positive targets "
                                 f"(got min {target.min():.4g}); pass log_target=False")
            target = np.log(target)
        self.domain_min_ = Xv.min(axis=0)
        self.domain_max_ = Xv.max(axis=0)
        n = int(Xv.shape[0])
        self.n_train_ = n
        rng = np.random.default_rng(self.random_state)
        self.members_: list[XGBRegressor] = []
        for i in range(self.n_members):
            idx = (rng.integers(0, n, n) if self.bootstrap and self.n_members > 1
                   else np.arange(n))
            self.members_.append(self._member(int(self.random_state) + i).fit(Xv[idx],
                                                                              target[idx]))
        return self

    # ---- prediction ------------------------------------------------------------------------
    def _check_X(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "members_")
        return validate_data(self, X, reset=False)

    def predict_members(self, X: ArrayLike) -> np.ndarray:
        """Every member's prediction, shape (n_members, n_samples), in target units."""
        X = self._check_X(X)
        out = np.vstack([m.predict(X) for m in self.members_]).astype(float)
        return np.exp(out) if self._uses_log() else out

    def predict(self, X: ArrayLike) -> np.ndarray:
        X = self._check_X(X)
        raw = np.vstack([m.predict(X) for m in self.members_]).astype(float).mean(axis=0)
        return np.exp(raw) if self._uses_log() else raw

    def predict_interval(self, X: ArrayLike,
                         coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds from the members' spread (a central `coverage` band)."""
        m = self.predict_members(X)
        lo, hi = (1 - coverage) / 2 * 100, (1 + coverage) / 2 * 100
        return np.percentile(m, lo, axis=0), np.percentile(m, hi, axis=0)

    def in_domain(self, X: ArrayLike, tol: float = 1e-9) -> np.ndarray:
        """True for rows whose every feature lies within the training range."""
        X = self._check_X(X)
        span = np.maximum(np.abs(self.domain_max_ - self.domain_min_), 1.0) * tol
        inside = (X >= self.domain_min_ - span) & (X <= self.domain_max_ + span)
        return np.asarray(inside.all(axis=1))

    def out_of_domain_features(self, x: ArrayLike) -> list[int]:
        """Indices of the features of one row that fall outside the training range."""
        X = self._check_X(np.asarray(x, dtype=float).reshape(1, -1))[0]
        return [i for i, v in enumerate(X) if v < self.domain_min_[i] or v > self.domain_max_[i]]

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.positive_only = self._uses_log()
        return tags


class LatencyPredictor(_XGBEnsemble):
    """Layer latency (ms) from layer features; fits log(ms) by default (relative errors)."""

    _log_default = True


class AccuracyPredictor(_XGBEnsemble):
    """Subnet accuracy from subnet features (encoding + analytic totals)."""

    _log_default = False

    def __init__(self, n_estimators: int = 200, max_depth: int = 3, learning_rate: float = 0.05,
                 n_members: int = 5, bootstrap: bool = True, log_target: bool | None = None,
                 monotone: tuple[int, ...] | None = None, random_state: int = 0,
                 n_jobs: int = 1) -> None:
        super().__init__(n_estimators=n_estimators, max_depth=max_depth,
                         learning_rate=learning_rate, n_members=n_members, bootstrap=bootstrap,
                         log_target=log_target, monotone=monotone, random_state=random_state,
                         n_jobs=n_jobs)
