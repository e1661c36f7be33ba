"""The values of a benchmark: `Item` (one question), `Task` (a named benchmark) and
`TaskItems` (the items selected for one evaluation, with their identity hash).

An item is a list of scoring requests, one per choice: a context and a continuation whose
log-likelihood given the context is the choice's score (lm-evaluation-harness's
``loglikelihood`` requests). Most tasks share one context across their choices; WinoGrande
("partial scoring") has one context per choice and a shared continuation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.errors import InputError

METRICS = ("acc", "acc_norm")


@dataclass(frozen=True)
class Item:
    requests: tuple[tuple[str, str], ...]  # (context, continuation) per choice
    gold: int
    choices: tuple[str, ...]  # choice texts without delimiter: acc_norm divides by their length
    group: str = ""  # e.g. the MMLU subject, for per-group breakdowns and few-shot pools
    preamble: str = ""  # task description put before few-shot examples and the question

    def __post_init__(self) -> None:
        object.__setattr__(self, "requests", tuple((str(c), str(k)) for c, k in self.requests))
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.requests:
            raise ValueError("an item needs at least one choice")
        if not 0 <= self.gold < len(self.requests):
            raise ValueError(f"gold index {self.gold} outside 0..{len(self.requests) - 1}")
        if len(self.choices) != len(self.requests):
            raise ValueError("one choice text per request")

    def example_text(self) -> str:
        """The item answered correctly, as a few-shot example."""
        context, continuation = self.requests[self.gold]
        return context + continuation

    def with_prefix(self, prefix: str) -> Item:
        """The item with ``prefix`` (preamble and few-shot examples) before every context."""
        reqs = tuple((prefix + c, k) for c, k in self.requests)
        return Item(reqs, self.gold, self.choices, self.group, "")

    def to_dict(self) -> dict[str, object]:
        return {"requests": [list(r) for r in self.requests], "gold": self.gold,
                "choices": list(self.choices), "group": self.group, "preamble": self.preamble}


@dataclass(frozen=True)
class Task:
    """A registered benchmark. ``load(split)`` returns its items in the bundle's order."""

    name: str
    description: str
    metric: str  # the headline metric: "acc", "acc_norm" (or "perplexity" for text tasks)
    load: Callable[[str], list[Item]]
    splits: Callable[[], list[str]]
    eval_split: str = "validation"
    fewshot_split: str | None = None  # None: no split other than eval_split exists
    kind: str = "multiple_choice"
    metrics: tuple[str, ...] = METRICS
    source: str = ""  # where the data comes from, for messages


@dataclass(frozen=True)
class TaskItems:
    """The items chosen for one evaluation, already carrying their few-shot prefix."""

    task: Task
    items: tuple[Item, ...]
    indices: tuple[int, ...]  # positions in the evaluated split
    fewshot: int
    total: int  # items in the evaluated split

    def hash(self) -> str:
        """Identity of exactly what is scored: every request and gold, in order."""
        h = hashlib.sha256()
        h.update(json.dumps([self.task.name, self.task.eval_split, self.fewshot]).encode())
        for it in self.items:
            h.update(json.dumps([it.requests, it.gold, it.choices, it.group],
                                separators=(",", ":")).encode())
        return h.hexdigest()[:16]


def select(total: int, limit: int | None, seed: int | None) -> list[int]:
    """Deterministic item selection: the first ``limit`` items, or with a seed a seeded
    random sample of ``limit`` items (kept in the split's order)."""
    if limit is not None and limit <= 0:
        raise InputError(f"--limit must be a positive number of items, got {limit}")
    n = total if limit is None else min(limit, total)
    if seed is None or n == total:
        return list(range(n))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(total, size=n, replace=False))


def fewshot_prefix(item: Item, pool: Sequence[Item], k: int) -> str:
    """lm-evaluation-harness's layout: preamble, then k solved examples, each followed by a
    blank line. Examples are the first k of the pool in the item's group (lm-eval's
    ``first_n`` sampler, which MMLU uses)."""
    if k == 0:
        return item.preamble
    same = [p for p in pool if p.group == item.group]
    if len(same) < k:
        raise InputError(f"{k}-shot needs {k} examples in the few-shot split"
                         f"{' for ' + repr(item.group) if item.group else ''}, "
                         f"but it has {len(same)}; use a smaller --fewshot")
    return item.preamble + "".join(ex.example_text() + "\n\n" for ex in same[:k])
