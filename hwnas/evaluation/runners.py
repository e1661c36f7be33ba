"""How each kind of task is scored: one runner per kind, registered by name.

A runner takes the loaded model and tokenizer, the chosen items and the `Scoring` settings,
and returns an `Outcome`: the headline value with its standard error, per-item predictions,
and extras. Runners of the kinds in `CHECKED_KINDS` honour `Scoring.precision`; the others
always score exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwnas.datasets.tasks import TaskItems
from hwnas.evaluation import metrics
from hwnas.evaluation.precision import CHECKED, EXACT, checked_loglikelihoods
from hwnas.evaluation.scoring import DEFAULT_BATCH_TOKENS, loglikelihoods
from hwnas.progress import Progress, ProgressEvent
from hwnas.registry import Registry

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Outcome:
    metric: str
    value: float
    stderr: float
    n: int
    predictions: tuple[int, ...] = ()
    golds: tuple[int, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Scoring:
    """How a runner scores: the token budget of one forward batch, and the resolved precision
    (`hwnas.evaluation.precision`: exact or bf16-checked)."""

    batch_tokens: int = DEFAULT_BATCH_TOKENS
    precision: str = EXACT


TaskRunner = Callable[["PreTrainedModel", "PreTrainedTokenizerBase", TaskItems, Progress | None,
                       Scoring], Outcome]
"""(model, tokenizer, chosen items, progress, scoring) -> Outcome."""
RUNNERS: Registry[TaskRunner] = Registry("task kind")
CHECKED_KINDS = frozenset({"multiple_choice"})  # kinds whose runner honours bf16-checked


def multiple_choice(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    chosen: TaskItems, progress: Progress | None,
                    scoring: Scoring = Scoring()) -> Outcome:
    items = chosen.items
    extra: dict[str, object] = {"precision": scoring.precision}
    if scoring.precision == CHECKED:
        lls, rechecked = checked_loglikelihoods(model, tokenizer, items, chosen.task.metrics,
                                                batch_tokens=scoring.batch_tokens,
                                                progress=progress)
        extra["rechecked"] = rechecked
    else:
        lls = loglikelihoods(model, tokenizer, items, batch_tokens=scoring.batch_tokens,
                             progress=progress)
    golds = tuple(it.gold for it in items)
    preds = {m: metrics.predictions(m, items, lls) for m in chosen.task.metrics}
    scores = {m: metrics.accuracy(p, golds) for m, p in preds.items()}
    head = chosen.task.metric
    extra["metrics"] = {m: {"accuracy": s.value, "stderr": s.stderr}
                        for m, s in scores.items()}
    extra["predictions"] = {m: p for m, p in preds.items() if m != head}
    gold = metrics.gold_probabilities(head, items, lls)
    g = metrics.mean_stderr(gold)
    extra["gold_prob"] = {"value": g.value, "stderr": g.stderr,
                          "per_item": [round(v, 6) for v in gold]}
    groups = metrics.by_group(preds[head], items)
    if groups:
        extra["groups"] = groups
    s = scores[head]
    return Outcome(head, s.value, s.stderr, s.n, tuple(preds[head]), golds, extra)


def perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, chosen: TaskItems,
               progress: Progress | None, scoring: Scoring = Scoring()) -> Outcome:
    """Perplexity of the chosen passages joined by blank lines (`hwnas.evaluation.perplexity`,
    non-overlapping 512-token windows). It has no standard error here (NaN)."""
    from hwnas.evaluation.perplexity import perplexity as ppl

    text = "\n\n".join(it.requests[0][1] for it in chosen.items)
    value = ppl(model, tokenizer, text)
    if progress is not None:
        progress(ProgressEvent("evaluate", len(chosen.items), len(chosen.items)))
    return Outcome("perplexity", value, math.nan, len(chosen.items),
                   extra={"text_chars": len(text)})


RUNNERS.register("multiple_choice", multiple_choice)
RUNNERS.register("perplexity", perplexity)
