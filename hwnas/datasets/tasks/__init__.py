"""Benchmark tasks: the bundled ones registered by name, and user tasks from JSONL files.

    from hwnas.datasets.tasks import prepare
    chosen = prepare("arc_easy", limit=200)          # first 200 validation items
    chosen = prepare("mmlu", limit=500, seed=0, fewshot=5)   # seeded sample, 5-shot (dev)

Tasks are looked up lazily: nothing is read until a task's items are asked for.
"""

from __future__ import annotations

from hwnas.datasets.tasks.base import Item, Task, TaskItems, fewshot_prefix, select
from hwnas.errors import InputError
from hwnas.registry import Registry

TASKS: Registry[Task] = Registry("task")
for _name, _attr in [("arc_easy", "ARC_EASY"), ("arc_challenge", "ARC_CHALLENGE"),
                     ("piqa", "PIQA"), ("hellaswag", "HELLASWAG"),
                     ("winogrande", "WINOGRANDE"), ("boolq", "BOOLQ"),
                     ("openbookqa", "OPENBOOKQA"), ("sciq", "SCIQ"), ("mmlu", "MMLU")]:
    TASKS.register(_name, f"hwnas.datasets.tasks.builtin:{_attr}")
TASKS.register("heldout_ppl", "hwnas.datasets.tasks.heldout:HELDOUT_PPL")


def chance_accuracy(name: str) -> float | None:
    """What guessing scores on a multiple-choice task's evaluated split (the mean over its
    items of 1 / number of choices); None for perplexity tasks."""
    task = get_task(name)
    if task.kind != "multiple_choice":
        return None
    items = task.load(task.eval_split)
    return float(sum(1.0 / len(it.choices) for it in items) / len(items)) if items else None


def get_task(name: str) -> Task:
    """A registered task by name, or a user task from a ``.jsonl`` file path."""
    from hwnas.datasets.tasks import jsonl

    if name not in TASKS and jsonl.looks_like_file(name):
        return jsonl.file_task(name)
    return TASKS.get(name)


def prepare(name: str | Task, limit: int | None = None, seed: int | None = None,
            fewshot: int = 0) -> TaskItems:
    """Select a task's items (first ``limit``, or a seeded sample) and put the preamble and
    ``fewshot`` solved examples, drawn from a split other than the evaluated one, before
    each."""
    task = get_task(name) if isinstance(name, str) else name
    if fewshot < 0:
        raise InputError(f"--fewshot must be 0 or more examples, got {fewshot}")
    pool: list[Item] = []
    if fewshot:
        if task.fewshot_split is None:
            raise InputError(
                f"task '{task.name}': few-shot examples must come from a split other than the "
                f"evaluated one ('{task.eval_split}'), but {task.source or 'its data'} has only "
                f"{', '.join(repr(s) for s in task.splits())}; use --fewshot 0, or a task with "
                "a separate few-shot split such as mmlu (dev)")
        pool = task.load(task.fewshot_split)
    items = task.load(task.eval_split)
    indices = select(len(items), limit, seed)
    chosen = tuple(items[i].with_prefix(fewshot_prefix(items[i], pool, fewshot))
                   for i in indices)
    return TaskItems(task, chosen, tuple(indices), fewshot, len(items))


__all__ = ["TASKS", "Item", "Task", "TaskItems", "get_task", "prepare", "select"]
