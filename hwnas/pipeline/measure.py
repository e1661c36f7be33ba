"""Measure for real the whole subnets that the latency predictors train on and are judged
against: the predictors say which are missing, the profilers time them.

The model is loaded only when something is missing.
"""

from __future__ import annotations

from hwnas.predictors.api import HardwareTarget, missing_subnets, report_specs
from hwnas.profilers.subnet import measure_each
from hwnas.progress import Progress
from hwnas.store import Storage
from hwnas.supernet.space import SubnetSpec
from hwnas.supernet.supernet import Supernet


def load_supernet(t: HardwareTarget) -> Supernet:
    """The target's model at the profile's dtype, with its importance ordering."""
    return Supernet.load(t.model, dtype=t.hw.dtype)


def ensure_subnets(t: HardwareTarget, store: Storage, specs: list[SubnetSpec],
                   progress: Progress | None = None, supernet: Supernet | None = None) -> int:
    """Measure the specs not in the store yet; returns how many were measured."""
    todo = missing_subnets(t, store, specs)
    if not todo:
        return 0
    sn = supernet if supernet is not None else load_supernet(t)
    return measure_each(t.hw, sn, todo, store, progress)


def measure_for_report(t: HardwareTarget, store: Storage, n_holdout: int, n_train: int,
                       progress: Progress | None = None) -> int:
    """The held-out and training subnets of a predictor report that the store lacks."""
    return ensure_subnets(t, store, report_specs(t, n_holdout, n_train), progress)
