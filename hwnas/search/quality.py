"""A subnet's quality values from its task results: what a real evaluation reports to the
search, the same in-process and on workers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
PROXY_TASK = "heldout_ppl"  # the perplexity objective's text when the run names no such task


@dataclass(frozen=True)
class TaskPlan:
    """What a run evaluates: `search`, each real evaluation (the tasks its quality objective
    and constraints read, at `--limit`); `final`, the re-measurement of the Pareto set (every
    task of the run, plus the perplexity objective's text, at `--final-limit`)."""

    search: tuple[str, ...]
    final: tuple[str, ...]


def task_plan(tasks: Sequence[str], objectives: Sequence[str],
              min_accuracy: float | None = None) -> TaskPlan:
    """The perplexity objective reads the run's perplexity tasks, or `PROXY_TASK` when it names
    none, so a search can steer on held-out perplexity (cheap, low-noise) and still report
    accuracy on the run's tasks at the end. A run without a quality objective evaluates all
    its tasks."""
    from hwnas.datasets.tasks import get_task
    from hwnas.search.objectives import CHOICE_QUALITY

    ppl = [t for t in tasks if get_task(t).kind == "perplexity"]
    choice = [t for t in tasks if t not in ppl]
    wants_ppl = "perplexity" in objectives
    wants_choice = bool(CHOICE_QUALITY & set(objectives)) or min_accuracy is not None
    text = ppl or ([PROXY_TASK] if wants_ppl else [])
    search = ((choice if wants_choice else []) + (text if wants_ppl else [])) or list(tasks)
    final = list(dict.fromkeys([*tasks, *(text if wants_ppl else [])]))
    return TaskPlan(tuple(search), tuple(final))


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
