"""The `Executor` protocol and the in-process `LocalExecutor` (the default).

`map(jobs, on_outcome)` runs every job and returns one `Outcome` per job, in the jobs' order;
`on_outcome` is called in the driver for each, also in the jobs' order (so what the driver
records is the same whatever the order jobs finish in). Jobs that share a key run once. A
job whose failure is the user's to fix (`InputError`) stops the call with that error.
Executors never touch the store: the driver records what comes back (a single writer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from hwnas.errors import InputError
from hwnas.executors.job import Job, Outcome, run_job

T = TypeVar("T")
OnOutcome = Callable[[Outcome[T]], None]


class Executor(Protocol):
    name: str
    in_process: bool  # jobs run in the driver's process (live objects need no shipping)

    def map(self, jobs: Sequence[Job[T]],
            on_outcome: OnOutcome[T] | None = None) -> list[Outcome[T]]: ...

    def describe(self) -> dict[str, object]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def unique(jobs: Sequence[Job[T]]) -> list[Job[T]]:
    """The jobs with distinct keys, first occurrence kept."""
    seen: dict[str, Job[T]] = {}
    for j in jobs:
        seen.setdefault(j.key, j)
    return list(seen.values())


def raise_input_errors(out: Outcome[T]) -> None:
    if out.failure is not None and out.failure.kind == "input":
        raise InputError(out.failure.message)


class LocalExecutor:
    """Runs each job in this process, one after another (timing jobs then run alone)."""

    name = "local"
    in_process = True

    def map(self, jobs: Sequence[Job[T]],
            on_outcome: OnOutcome[T] | None = None) -> list[Outcome[T]]:
        done: dict[str, Outcome[T]] = {}
        for job in unique(jobs):
            ran = run_job(job.fn, job.args)
            out = Outcome(job.key, ran.value, ran.failure, 1, "local", ran.host, ran.started,
                          ran.ended)
            raise_input_errors(out)
            done[job.key] = out
            if on_outcome is not None:
                on_outcome(out)
        return [done[j.key] for j in jobs]

    def describe(self) -> dict[str, object]:
        return {"executor": "local"}

    def close(self) -> None:
        return None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
