"""Evaluation as executor jobs: one job per (target, task) that the store lacks.

The driver chooses the items, looks each (target, task) up in the store by its cache key (the
job's idempotent key), and hands the misses to the executor; a worker loads the target (a
model it already holds is reused), scores the items and returns the `EvalResult`; the driver
writes it. So `--executor dask` scores exactly the items and stores exactly the records that
the in-process path does. A job that raises (out of memory on a big subnet) comes back as a
`Failure` with its reason.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from hwnas.datasets.tasks import Item, TaskItems, prepare
from hwnas.errors import HwnasError, InputError
from hwnas.evaluation.evaluator import _run, cache_key, task_scoring
from hwnas.evaluation.precision import resolve
from hwnas.evaluation.result import EvalResult
from hwnas.evaluation.runners import Scoring
from hwnas.evaluation.scoring import DEFAULT_BATCH_TOKENS
from hwnas.evaluation.target import EvalTarget, Loaded
from hwnas.executors import Executor, Failure, Job, Outcome
from hwnas.progress import Progress, ProgressEvent
from hwnas.store import Storage
from hwnas.supernet.space import SubnetSpec


class EvaluationFailed(HwnasError):
    """A task's evaluation raised on its worker (e.g. out of memory); the reason is kept."""

    def __init__(self, task: str, failure: Failure) -> None:
        super().__init__(f"task {task}: the evaluation failed ({failure.reason})")
        self.failure = failure


def evaluate_many(targets: Sequence[EvalTarget], tasks: Sequence[str], executor: Executor, *,
                  limit: int | None = None, seed: int | None = None,
                  store: Storage | None = None, no_cache: bool = False, fewshot: int = 0,
                  batch_tokens: int = DEFAULT_BATCH_TOKENS,
                  progress: Progress | None = None, precision: str = "auto"
                  ) -> list[dict[str, EvalResult] | Failure]:
    """Each target on every task: its results keyed by task as given, or the `Failure` of
    its first failed task. Cached results come from the store; new ones are written there by
    this (the driver's) process only, in the jobs' order."""
    if not tasks:
        raise InputError("no tasks given; name at least one, e.g. --tasks arc_easy,piqa")
    names = list(dict.fromkeys(tasks))
    chosen = {n: prepare(n, limit=limit, seed=seed, fewshot=fewshot) for n in names}
    found: dict[tuple[int, str], EvalResult] = {}
    jobs: list[Job[EvalResult]] = []
    where: dict[str, tuple[EvalTarget, TaskItems, str]] = {}
    keys: dict[tuple[int, str], str] = {}
    for i, target in enumerate(targets):
        mode = resolve(precision, target.dtype)  # on the driver: one key on every worker
        for name, ti in chosen.items():
            scoring = task_scoring(ti, mode, batch_tokens)
            key = keys[i, name] = cache_key(target, ti, scoring.precision)
            record = None if (store is None or no_cache) else store.get_evaluation(key)
            if record is not None:
                cached = EvalResult.from_dict(record)
                found[i, name] = dataclasses.replace(cached,
                                                     extra={**cached.extra, "cached": True})
                if progress is not None:
                    progress(ProgressEvent("evaluate", cached.n, cached.n, name))
                continue
            where[key] = (target, ti, name)
            jobs.append(Job(key, run_task, (target, _portable(ti), name, limit, seed,
                                            scoring)))

    def write(out: Outcome[EvalResult]) -> None:
        target, ti, name = where[out.key]
        if out.value is None:
            return
        if store is not None:
            store.put_evaluation(out.key, model=target.fingerprint, subnet=target.subnet,
                                 task=ti.task.name, score=out.value.score,
                                 record=out.value.to_dict())
        if progress is not None:
            progress(ProgressEvent("evaluate", out.value.n, out.value.n, name))

    try:
        outcomes = {o.key: o for o in executor.map(jobs, write)}
    finally:
        if executor.in_process:
            _LAST.clear()
    results: list[dict[str, EvalResult] | Failure] = []
    for i in range(len(targets)):
        per: dict[str, EvalResult] = {}
        failed: Failure | None = None
        for name in names:
            if (i, name) in found:
                per[name] = found[i, name]
                continue
            o = outcomes[keys[i, name]]
            if o.value is None:
                failed = failed or o.failure
            else:
                per[name] = o.value
        results.append(failed if failed is not None else per)
    return results


def _no_items(split: str) -> list[Item]:
    raise RuntimeError("a shipped task carries its chosen items; it loads nothing")


def _no_splits() -> list[str]:
    return []


def _portable(ti: TaskItems) -> TaskItems:
    """The chosen items without the task's loaders (which may hold a whole dataset)."""
    return dataclasses.replace(ti, task=dataclasses.replace(ti.task, load=_no_items,
                                                            splits=_no_splits))


_LAST: dict[tuple[str, str, str], Loaded] = {}


def _loaded(target: EvalTarget) -> Loaded:
    """The last target loaded in this process (its tasks are often run back to back)."""
    ident = (target.fingerprint, target.subnet, target.dtype)
    if ident not in _LAST:
        _LAST.clear()
        _LAST[ident] = target.load()
    return _LAST[ident]


def run_task(target: EvalTarget, ti: TaskItems, name: str, limit: int | None, seed: int | None,
             scoring: Scoring) -> EvalResult:
    """One job: score `ti` on `target` (loaded here, on the worker)."""
    return _run(target, ti, _loaded(target), name, None, scoring, limit, seed)


# ---- targets a worker can load by itself -------------------------------------------------
def _load_named(model: str, spec: SubnetSpec | None, dtype: str, repair: str = "none"
                ) -> Loaded:
    from hwnas.supernet.cached import loaded_supernet

    sn = loaded_supernet(model, dtype)
    if sn.tokenizer is None:
        raise InputError(f"model '{model}' has no tokenizer; accuracy evaluation needs one")
    return (sn.model if spec is None else sn.extract(spec, repair=repair)), sn.tokenizer


def named_target(model: str, spec: SubnetSpec | None, dtype: str, like: EvalTarget,
                 repair: str = "none") -> EvalTarget:
    """`like` (a target of a `Supernet` in the driver's memory) with a loader that a worker
    runs on its own: it loads the model by name (once per process) and cuts the subnet. Same
    identity, so the same cache keys and records."""
    return EvalTarget(like.fingerprint, like.subnet, like.dtype,
                      functools.partial(_load_named, model, spec, dtype, repair),
                      spec=like.spec)


def evaluate_on(executor: Executor, target: EvalTarget, tasks: Sequence[str], *,
                limit: int | None = None, seed: int | None = None,
                store: Storage | None = None, no_cache: bool = False, fewshot: int = 0,
                batch_tokens: int = DEFAULT_BATCH_TOKENS,
                progress: Progress | None = None, precision: str = "auto"
                ) -> dict[str, EvalResult]:
    """`hwnas.evaluation.evaluate` of one target through `executor`, each task a job;
    raises `EvaluationFailed` with the reason when a task's job failed."""
    got = evaluate_many([target], tasks, executor, limit=limit, seed=seed, store=store,
                        no_cache=no_cache, fewshot=fewshot, batch_tokens=batch_tokens,
                        progress=progress, precision=precision)[0]
    if isinstance(got, Failure):
        raise EvaluationFailed(", ".join(tasks), got)
    return got
