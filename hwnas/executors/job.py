"""What an executor runs (`Job`) and what comes back (`Outcome`, or a `Failure` with its
reason): plain, typed values.

A job names a module-level function and its arguments (both picklable: a Dask worker gets
them), an idempotent key (the hash of what the result is stored under: model, subnet, task or
workload, evaluator or protocol version), and its kind. A ``"timing"`` job measures latency and
needs its device to itself; every other job is ``"work"``. `run_job` is what runs on the
worker: it holds the host lock (shared for work, exclusive for timing), times the call on the
wall clock, and turns an exception into a `Failure` value instead of losing the worker.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from hwnas.errors import InputError
from hwnas.executors.hostlock import host_lock

T = TypeVar("T")

DEVICE = "device"  # the resource every worker declares once: its whole device (GPU or cores)
KINDS = ("work", "timing")


@dataclass(frozen=True)
class Job(Generic[T]):
    key: str
    fn: Callable[..., T]
    args: tuple[object, ...] = ()
    kind: str = "work"  # "work" | "timing"
    hw: str | None = None  # timing jobs: the hardware profile they must be timed on

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"job kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.kind == "timing" and not self.hw:
            raise ValueError("a timing job names the hardware profile it is timed on (hw=...)")

    @property
    def exclusive(self) -> bool:
        return self.kind == "timing"

    def resources(self) -> dict[str, float]:
        """Dask worker resources: every job takes the worker's whole device (capacity 1), so
        nothing runs beside it there; a timing job also needs a worker that declares its
        hardware profile (capacity 1)."""
        out = {DEVICE: 1.0}
        if self.hw:
            out[self.hw] = 1.0
        return out


@dataclass(frozen=True)
class Failure:
    """Why a job gave no value. kind: "oom" (out of memory), "error" (it raised), "lost" (its
    worker died more often than the retry budget allows), "input" (the user's to fix)."""

    kind: str
    error: str  # the exception's type name
    message: str

    @property
    def reason(self) -> str:
        return f"{self.error}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "error": self.error, "message": self.message}


@dataclass(frozen=True)
class Ran(Generic[T]):
    """What `run_job` sends back from the worker."""

    value: T | None
    failure: Failure | None
    host: str
    pid: int
    started: float  # wall clock (time.time()) on the worker, inside the host lock
    ended: float


@dataclass(frozen=True)
class Outcome(Generic[T]):
    key: str
    value: T | None
    failure: Failure | None = None
    attempts: int = 1
    worker: str = "local"
    host: str = ""
    started: float = 0.0
    ended: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None


def is_oom(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or "OutOfMemory" in type(e).__name__ or \
        "out of memory" in str(e).lower()


def failure_of(e: BaseException) -> Failure:
    kind = "input" if isinstance(e, InputError) else "oom" if is_oom(e) else "error"
    first = str(e).splitlines()[0][:500] if str(e) else ""
    return Failure(kind, type(e).__name__, first)


def run_job(fn: Callable[..., T], args: tuple[object, ...], exclusive: bool = False,
            lock: str | None = None) -> Ran[T]:
    """Run one job where it landed. An exception becomes a `Failure` (a deterministic error
    such as out of memory is not worth a retry); only the worker's death is retried."""
    with host_lock(lock, exclusive):
        started = time.time()
        try:
            value: T | None = fn(*args)
            failure = None
        except Exception as e:  # the job's own error: recorded with its reason
            value, failure = None, failure_of(e)
        ended = time.time()
    return Ran(value, failure, socket.gethostname(), os.getpid(), started, ended)
