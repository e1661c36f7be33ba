"""An exclusive `flock` held while timing, so that timing runs on a shared machine wait for
each other (and other heavy work can pause while one runs).

The file comes from the caller (`hwnas search --timing-lock`) or the environment variable
`HWNAS_TIMING_LOCK`; every timed group of the profilers holds it. Re-entrant within a process:
a second `flock` on another descriptor of the same file would wait on itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

ENV = "HWNAS_TIMING_LOCK"
_held: dict[str, int] = {}


@contextlib.contextmanager
def timing_lock(path: str | Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (default: $HWNAS_TIMING_LOCK; none: no lock)."""
    target = path if path is not None else os.environ.get(ENV) or None
    if target is None:
        yield
        return
    key = str(Path(target).resolve())
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    with open(key, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _held[key] = 1
        try:
            yield
        finally:
            _held[key] = 0
            fcntl.flock(fh, fcntl.LOCK_UN)
