"""`evaluate`: accuracy of a model or subnet on named tasks, cached in the store.

A result's key is the hash of model fingerprint + subnet key + dtype + task + the chosen
items (with their few-shot prefixes) + evaluator version (+ the scoring precision, when it is
not exact), so a repeated evaluation is a store lookup and never loads, extracts or runs the
model. ``no_cache`` recomputes (the store keeps
its first record: it is append-only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hwnas.datasets.tasks import TaskItems, prepare
from hwnas.errors import InputError
from hwnas.evaluation.precision import EXACT, resolve
from hwnas.evaluation.result import EVALUATOR_VERSION, EvalResult
from hwnas.evaluation.runners import CHECKED_KINDS, RUNNERS, Scoring
from hwnas.evaluation.scoring import DEFAULT_BATCH_TOKENS
from hwnas.evaluation.target import EvalTarget, Loaded, from_supernet
from hwnas.progress import Progress, ProgressEvent
from hwnas.store import Storage

if TYPE_CHECKING:
    from hwnas.supernet.space import SubnetSpec
    from hwnas.supernet.supernet import Supernet


def cache_key(target: EvalTarget, chosen: TaskItems, precision: str = EXACT) -> str:
    ident: list[object] = [target.fingerprint, target.subnet, target.dtype, chosen.task.name,
                           chosen.hash(), EVALUATOR_VERSION]
    if precision != EXACT:
        ident.append(precision)
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:24]


def evaluate(sn: Supernet | EvalTarget, spec: SubnetSpec | None = None,
             tasks: Sequence[str] = ("arc_easy",),
             limit: int | None = None, seed: int | None = None, store: Storage | None = None,
             no_cache: bool = False, progress: Progress | None = None, fewshot: int = 0,
             batch_tokens: int = DEFAULT_BATCH_TOKENS, precision: str = "auto",
             cached_only: bool = False) -> dict[str, EvalResult]:
    """Evaluate ``sn`` (a `Supernet`, with ``spec`` None for the whole model, or a `EvalTarget`)
    on ``tasks`` (registered names or JSONL paths), at ``precision`` (auto, exact or
    bf16-checked; `hwnas.evaluation.precision`). Returns results keyed as given;
    ``cached_only``: only what the store already holds (a task it lacks is left out, nothing
    is loaded or run)."""
    if not tasks:
        raise InputError("no tasks given; name at least one, e.g. --tasks arc_easy,piqa")
    target = sn if isinstance(sn, EvalTarget) else from_supernet(sn, spec)
    names = list(dict.fromkeys(tasks))
    chosen = {n: prepare(n, limit=limit, seed=seed, fewshot=fewshot) for n in names}
    mode = resolve(precision, target.dtype)
    results: dict[str, EvalResult] = {}
    loaded: Loaded | None = None
    for name, ti in chosen.items():
        scoring = task_scoring(ti, mode, batch_tokens)
        key = cache_key(target, ti, scoring.precision)
        record = None if (store is None or no_cache) else store.get_evaluation(key)
        if record is not None:
            cached = EvalResult.from_dict(record)
            results[name] = dataclasses.replace(cached, extra={**cached.extra, "cached": True})
            if progress is not None:
                progress(ProgressEvent("evaluate", cached.n, cached.n, name))
            continue
        if cached_only:
            continue
        if loaded is None:
            loaded = target.load()
        result = _run(target, ti, loaded, name, progress, scoring, limit, seed)
        if store is not None:
            store.put_evaluation(key, model=target.fingerprint, subnet=target.subnet,
                                 task=ti.task.name, score=result.score,
                                 record=result.to_dict())
        results[name] = result
    return results


def task_scoring(ti: TaskItems, mode: str, batch_tokens: int) -> Scoring:
    """The scoring of one task: `mode` (resolved) where its kind honours it, else exact."""
    return Scoring(batch_tokens, mode if ti.task.kind in CHECKED_KINDS else EXACT)


def _run(target: EvalTarget, ti: TaskItems, loaded: Loaded, name: str,
         progress: Progress | None, scoring: Scoring, limit: int | None,
         seed: int | None) -> EvalResult:
    model, tokenizer = loaded
    runner = RUNNERS.get(ti.task.kind)
    start = time.perf_counter()

    def step(ev: ProgressEvent) -> None:
        if progress is not None:
            progress(dataclasses.replace(ev, what=name))

    out = runner(model, tokenizer, ti, step, scoring)
    seconds = time.perf_counter() - start
    extra = {**out.extra, "split": ti.task.eval_split, "total": ti.total, "fewshot": ti.fewshot,
             "limit": limit, "seed": seed, "items_hash": ti.hash(), "dtype": target.dtype,
             "seconds": round(seconds, 3), "items_per_s": round(out.n / seconds, 3)}
    if seed is not None and limit is not None:
        extra["indices"] = list(ti.indices)
    if target.spec is not None:
        extra["spec"] = target.spec
    return EvalResult(task=ti.task.name, metric=out.metric, score=out.value,
                      stderr=out.stderr, n=out.n, model=target.fingerprint,
                      subnet=target.subnet, predictions=out.predictions, golds=out.golds,
                      extra=extra)
