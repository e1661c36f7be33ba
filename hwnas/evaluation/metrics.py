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
    if metric in ("acc", "acc_norm"):
        return [int(np.argmax(choice_scores(metric, it, ll)))
                for it, ll in zip(items, lls, strict=True)]
    raise ValueError(f"unknown metric {metric!r}; known: acc, acc_norm")


def choice_scores(metric: str, item: Item, ll: Sequence[float]) -> np.ndarray:
    """The scores `metric` takes the argmax of: log-likelihoods (acc), or per character
    (acc_norm)."""
    arr = np.asarray(ll, dtype=float)
    if metric == "acc_norm":
        return arr / np.array([float(len(c)) for c in item.choices])
    return arr


def gold_probabilities(metric: str, items: Sequence[Item], lls: Sequence[Sequence[float]]
                       ) -> list[float]:
    """Per item, the gold choice's share of a softmax over `metric`'s choice scores: a
    continuous signal where accuracy is 0 or 1, so two subnets scored on the same items differ
    by far less noise than their accuracies do."""
    out = []
    for it, ll in zip(items, lls, strict=True):
        z = choice_scores(metric, it, ll)
        p = np.exp(z - z.max())
        out.append(float(p[it.gold] / p.sum()))
    return out


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
