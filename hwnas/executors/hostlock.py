"""A host-wide reader/writer lock on a file: timing jobs hold it exclusively, every other job
shared, so that no timing runs beside other work of co-located workers (several Dask workers
on one machine share its cores; Dask's worker resources only count within one worker).

`flock` locks belong to the open file, so they hold across processes and die with the process
(a killed worker never leaves the lock held). A writer first takes the turnstile file
(``PATH.turnstile``), which new readers must pass, so a waiting timing job is not starved by a
stream of evaluations. The path comes from the executor (hwnas's own local cluster makes one)
or the worker's environment variable `HWNAS_HOST_LOCK`; none: no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

ENV = "HWNAS_HOST_LOCK"


@contextlib.contextmanager
def host_lock(path: str | None, exclusive: bool) -> Iterator[None]:
    target = path or os.environ.get(ENV) or None
    if target is None:
        yield
        return
    with open(target + ".turnstile", "a") as gate, open(target, "a") as fh:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
