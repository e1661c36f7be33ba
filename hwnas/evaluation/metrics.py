"""Accuracy metrics from per-choice log-likelihoods, as lm-evaluation-harness computes them.

``acc``: the choice with the highest log-likelihood. ``acc_norm``: the highest log-likelihood
divided by the choice's length in characters (the choice text without the delimiter before
it, lm-eval's ``completion_len``). Ties go to the first choice (``numpy.argmax``). The
standard error is the sample standard deviation of the per-item scores over sqrt(n)
(lm-eval's ``mean_stderr``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.datasets.tasks import Item


@dataclass(frozen=True)
class Score:
    value: float
    stderr: float
    n: int


def predictions(metric: str, items: Sequence[Item], lls: Sequence[Sequence[float]]
                ) -> list[int]:
    if metric == "acc":
        return [int(np.argmax(ll)) for ll in lls]
    if metric == "acc_norm":
        return [int(np.argmax(np.asarray(ll) / np.array([float(len(c)) for c in it.choices])))
                for it, ll in zip(items, lls, strict=True)]
    raise ValueError(f"unknown metric {metric!r}; known: acc, acc_norm")


def mean_stderr(values: Sequence[float]) -> Score:
    n = len(values)
    if n == 0:
        return Score(float("nan"), float("nan"), 0)
    arr = np.asarray(values, dtype=float)
    stderr = float(arr.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return Score(float(arr.mean()), stderr, n)


def accuracy(preds: Sequence[int], golds: Sequence[int]) -> Score:
    return mean_stderr([float(p == g) for p, g in zip(preds, golds, strict=True)])


def by_group(preds: Sequence[int], items: Sequence[Item]) -> dict[str, dict[str, float]]:
    """Accuracy per item group (e.g. MMLU subject); empty when items have no groups."""
    groups: dict[str, list[float]] = {}
    for p, it in zip(preds, items, strict=True):
        if it.group:
            groups.setdefault(it.group, []).append(float(p == it.gold))
    out = {}
    for g in sorted(groups):
        s = mean_stderr(groups[g])
        out[g] = {"accuracy": s.value, "stderr": s.stderr, "n": s.n}
    return out
