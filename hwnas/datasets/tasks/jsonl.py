"""User tasks from a JSONL file: one multiple-choice question per line.

Each line is a JSON object::

    {"context": "Question: 2 + 2 =\\nAnswer:", "choices": ["4", "5"], "gold": 0}

with optional ``"delimiter"`` (put between context and choice; default " ", as in
lm-evaluation-harness) and ``"group"`` (a label for a per-group breakdown). Blank lines are
skipped. Every problem is reported with the file name and line number.
"""

from __future__ import annotations

import json
from pathlib import Path

from hwnas.datasets.tasks.base import Item, Task
from hwnas.errors import InputError
from hwnas.safe_io import decode_utf8, loads_strict

EXAMPLE = '{"context": "Question: 2 + 2 =\\nAnswer:", "choices": ["4", "5"], "gold": 0}'
SPLIT = "file"


def looks_like_file(name: str) -> bool:
    return name.endswith((".jsonl", ".json")) or Path(name).expanduser().is_file()


def parse_line(raw: str, where: str) -> Item:
    try:
        obj: object = loads_strict(raw, where)
    except InputError as e:
        raise InputError(f"{str(e).replace('invalid JSON', 'not valid JSON')}; each line must "
                         f"be one JSON object such as {EXAMPLE}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object such as {EXAMPLE}, "
                         f"got {type(obj).__name__}")
    unknown = sorted(set(obj) - {"context", "choices", "gold", "delimiter", "group"})
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: context, "
                         "choices, gold, delimiter, group")
    context, choices, gold = obj.get("context"), obj.get("choices"), obj.get("gold")
    delimiter, group = obj.get("delimiter", " "), obj.get("group", "")
    if not isinstance(context, str):
        raise InputError(f"{where}: field 'context' must be a string, got {json.dumps(context)}")
    if (not isinstance(choices, list) or len(choices) < 2
            or not all(isinstance(c, str) and c for c in choices)):
        raise InputError(f"{where}: field 'choices' must be a list of at least two non-empty "
                         f"strings, got {json.dumps(choices)[:80]}")
    if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(choices):
        raise InputError(f"{where}: field 'gold' must be the index of the right choice "
                         f"(0..{len(choices) - 1}), got {json.dumps(gold)}")
    if not isinstance(delimiter, str) or not isinstance(group, str):
        raise InputError(f"{where}: fields 'delimiter' and 'group' must be strings")
    return Item(tuple((context, delimiter + c) for c in choices), gold, tuple(choices),
                group=group)


def load_file(path: Path) -> list[Item]:
    if not path.is_file():
        raise InputError(f"{path}: no such task file; give a task name or a JSONL file")
    items = []
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"task file {path}: cannot read it ({e.strerror or e})") from None
    text = decode_utf8(data, f"task file {path}")
    for n, raw in enumerate(text.split("\n"), start=1):
        if raw.strip():
            items.append(parse_line(raw, f"{path}:{n}"))
    if not items:
        raise InputError(f"{path}: the task file has no items; write one JSON object per "
                         f"line, such as {EXAMPLE}")
    return items


def file_task(name: str) -> Task:
    path = Path(name).expanduser()

    def load(split: str) -> list[Item]:
        return load_file(path)

    return Task(name=path.stem, description=f"user task from {path}", metric="acc", load=load,
                splits=lambda: [SPLIT], eval_split=SPLIT, source=str(path))
