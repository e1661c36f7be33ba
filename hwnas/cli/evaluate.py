"""`hwnas evaluate` (accuracy of a model, subnet or exported directory on benchmarks, cached
in the store) and `hwnas tasks` (the tasks it knows)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import (
    JSON_OPT,
    MODEL_OPT,
    console,
    print_json,
    progress_bar,
    table,
)
from hwnas.cli._executor import EXECUTOR_OPT, RETRIES_OPT, SCHEDULER_OPT, WORKERS_OPT, executor_spec
from hwnas.errors import InputError
from hwnas.progress import ProgressEvent


def _task_names(tasks: str) -> list[str]:
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names:
        raise InputError(f"--tasks '{tasks}': name at least one task, e.g. arc_easy,piqa "
                         "(see `hwnas tasks`)")
    return names


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class _Bars:
    """One rich progress bar per task, on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.ids: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        if self.enabled:
            self.bar = progress_bar(16)
            self.bar.__enter__()
        return self

    def __call__(self, ev: ProgressEvent) -> None:
        if not self.enabled:
            return
        if ev.what not in self.ids:
            self.ids[ev.what] = self.bar.add_task(ev.what, total=ev.total)
        self.bar.update(self.ids[ev.what], completed=ev.done, total=ev.total)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(None, None, None)


def evaluate_cmd(
    model: str = MODEL_OPT,
    subnet: str | None = typer.Option(None, "--subnet", "-s",
                                      help="Subnet JSON, inline or a file path "
                                           "[default: the whole model]."),
    directory: Path | None = typer.Option(None, "--dir", help="Evaluate a model directory "
                                          "(e.g. from `hwnas export`) instead of --subnet."),
    tasks: str = typer.Option("arc_easy", "--tasks", "-t",
                              help="Comma-separated task names (see `hwnas tasks`) or JSONL "
                                   "files."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Evaluate the first N items "
                                     "of each task (with --seed: a seeded sample of N)."),
    seed: int | None = typer.Option(None, "--seed", help="Sample --limit items with this "
                                    "seed instead of taking the first ones."),
    fewshot: int = typer.Option(0, "--fewshot", help="Solved examples before each question, "
                                "from a split other than the evaluated one."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, bf16 or fp16."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute even when the store "
                                  "holds this evaluation."),
    batch_tokens: int = typer.Option(2048, "--batch-tokens", min=64,
                                     help="Token budget of one forward batch."),
    precision: str = typer.Option("auto", "--precision", help="exact: score in --dtype. "
                                  "bf16-checked: bf16 matmuls, with every close decision "
                                  "re-scored in fp32 (same answers, faster on CPUs with native "
                                  "bf16). auto: bf16-checked for fp32 on such CPUs, else exact."),
    repair: str = typer.Option("none", "--repair", help="none, or ls: the training-free "
                               "least-squares repair of the cut weights (with --subnet)."),
    executor: str | None = EXECUTOR_OPT,
    scheduler: str | None = SCHEDULER_OPT,
    workers: int | None = WORKERS_OPT,
    retries: int = RETRIES_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Accuracy on benchmarks: `hwnas evaluate --model M [--subnet S | --dir D] --tasks T1,T2`."""
    from hwnas.evaluation import evaluate, from_dir
    from hwnas.evaluation.precision import resolve
    from hwnas.evaluation.target import from_name
    from hwnas.store import open_store
    from hwnas.supernet import SubnetSpec

    if subnet is not None and directory is not None:
        raise InputError("give either --subnet or --dir, not both")
    names = _task_names(tasks)
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: give a positive number of items per task")
    if fewshot < 0:
        raise InputError(f"--fewshot {fewshot}: give 0 or more solved examples")
    if repair != "none" and subnet is None:
        raise InputError("--repair applies to a cut subnet: give --subnet SPEC with it")
    where = executor_spec(executor, scheduler, workers, retries)
    if directory is not None:
        target = from_dir(directory, dtype=dtype, tokenizer_from=model)
    else:
        spec = SubnetSpec.parse(subnet) if subnet is not None else None
        target = from_name(model, spec, dtype, repair=repair)
    with open_store() as store, _Bars(not json_out) as bars:
        if where.name == "local":
            results = evaluate(target, None, names, limit=limit, seed=seed, store=store,
                               no_cache=no_cache, progress=bars, fewshot=fewshot,
                               batch_tokens=batch_tokens, precision=precision)
        else:  # each task missing from the store is one job on the cluster
            from hwnas.evaluation.scaleout import EvaluationFailed, evaluate_on
            from hwnas.executors import open_executor

            try:
                with open_executor(where) as ex:
                    results = evaluate_on(ex, target, names, limit=limit, seed=seed,
                                          store=store, no_cache=no_cache, progress=bars,
                                          fewshot=fewshot, batch_tokens=batch_tokens,
                                          precision=precision)
            except EvaluationFailed as e:
                raise InputError(f"{e}; try a smaller --batch-tokens or a bigger worker") \
                    from None
    data = {"model": target.fingerprint, "subnet": target.subnet, "dtype": target.dtype,
            "precision": resolve(precision, target.dtype),
            "tasks": {n: _task_json(r) for n, r in results.items()}}
    if json_out:
        print_json(data)
        return
    rows = []
    for n, r in results.items():
        err = "" if not math.isfinite(r.stderr) else f"± {r.stderr:.4f}"
        rows.append([n, r.metric, f"{r.score:.4f}", err, r.n,
                     "cached" if r.extra.get("cached") else f"{r.extra.get('seconds', 0):.1f} s"])
    table(f"{model} · subnet {target.subnet} · {target.dtype} · {data['precision']}",
          ["task", "metric", "value", "stderr", "n", "time"], rows)


def _task_json(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"accuracy": r.score, "stderr": _finite(r.stderr), "n": r.n,
                           "metric": r.metric, "cached": bool(r.extra.get("cached")),
                           "precision": r.extra.get("precision", "exact")}
    if "rechecked" in r.extra:
        out["rechecked"] = r.extra["rechecked"]
    if "metrics" in r.extra:
        out["metrics"] = r.extra["metrics"]
    if "groups" in r.extra:
        out["groups"] = r.extra["groups"]
    return out


def tasks_cmd(json_out: bool = JSON_OPT) -> None:
    """List the evaluation tasks (a JSONL file path works as a task too)."""
    from hwnas.datasets.tasks import TASKS

    rows = []
    for name in TASKS.names():
        t = TASKS.get(name)
        rows.append({"name": name, "metric": t.metric, "split": t.eval_split,
                     "fewshot_split": t.fewshot_split, "description": t.description})
    if json_out:
        print_json(rows)
        return
    table("tasks", ["name", "metric", "split", "few-shot from", "description"],
          [[r["name"], r["metric"], r["split"], r["fewshot_split"] or "-", r["description"]]
           for r in rows])
    console.print('Also: a JSONL file, one {"context": ..., "choices": [...], "gold": i} per '
                  "line.")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
    app.command("tasks")(tasks_cmd)
