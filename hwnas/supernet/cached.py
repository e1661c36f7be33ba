"""The supernet a worker process holds: loaded by name once, reused by every job there."""

from __future__ import annotations

import functools

from hwnas.supernet.supernet import Supernet


@functools.lru_cache(maxsize=1)
def loaded_supernet(model: str, dtype: str = "fp32") -> Supernet:
    """`Supernet.load(model, dtype)`, kept for the next job of this process (one at a time)."""
    return Supernet.load(model, dtype=dtype)
