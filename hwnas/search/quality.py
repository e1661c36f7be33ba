"""A subnet's quality values from its task results: what a real evaluation reports to the
search, the same in-process and on workers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import numpy as np

from hwnas.evaluation.result import EvalResult


class TaskDetail(TypedDict):
    """One task's result inside `Measured.detail["tasks"]`."""

    metric: str
    value: float  # accuracy, or perplexity for metric == "perplexity"
    stderr: float
    n: int


ITEM_SEED = 0  # real evaluations use a seeded sample of `limit` items of each task


def summarise(res: Mapping[str, EvalResult]
              ) -> tuple[dict[str, float], dict[str, TaskDetail]]:
    """A subnet's quality values (mean accuracy, mean gold-choice probability, mean
    perplexity) and per-task detail."""
    acc = [r.score for r in res.values() if r.metric != "perplexity"]
    ppl = [r.score for r in res.values() if r.metric == "perplexity"]
    values: dict[str, float] = {}
    if acc:
        values["accuracy"] = float(np.mean(acc))
    gold = [g["value"] for r in res.values()
            if isinstance(g := r.extra.get("gold_prob"), dict) and "value" in g]
    if acc and len(gold) == len(acc):
        values["gold_prob"] = float(np.mean([float(v) for v in gold]))
    if ppl:
        values["perplexity"] = float(np.mean(ppl))
    detail: dict[str, TaskDetail] = {
        name: {"metric": r.metric, "value": r.score, "stderr": r.stderr, "n": r.n}
        for name, r in res.items()}
    return values, detail
