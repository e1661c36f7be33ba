"""Where jobs run: in this process (`local`, the default) or on a Dask cluster (`dask`).

Profiling, evaluation and search hand an executor a list of `Job` values and record the
`Outcome` values that come back; the executor never writes the store. dask is imported only
by `hwnas.executors.dask`, so the local executor works without it.

    with open_executor(ExecutorSpec("dask", workers=2)) as ex:
        outcomes = ex.map([Job(key, fn, (arg,))])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwnas.errors import InputError
from hwnas.executors.base import Executor, LocalExecutor, OnOutcome
from hwnas.executors.job import DEVICE, Failure, Job, Outcome, run_job

EXECUTORS = ("local", "dask")


@dataclass(frozen=True)
class ExecutorSpec:
    """The CLI's `--executor`, `--scheduler`, `--workers` and `--retries`."""

    name: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    retries: int = 2

    @classmethod
    def from_options(cls, executor: str | None, scheduler: str | None = None,
                     workers: int | None = None, retries: int = 2) -> ExecutorSpec:
        """`--workers N` or `--scheduler ADDRESS` alone mean `--executor dask`."""
        name = executor or ("dask" if scheduler is not None or workers is not None else "local")
        if name not in EXECUTORS:
            raise InputError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
        if name == "local" and (scheduler is not None or workers is not None):
            raise InputError("--scheduler and --workers are for --executor dask; drop them to "
                             "run in this process")
        if name == "dask" and (scheduler is None) == (workers is None):
            raise InputError("--executor dask: give either --scheduler ADDRESS (a running "
                             "cluster) or --workers N (a local cluster on 127.0.0.1)")
        return cls(name, scheduler, workers, retries)


def open_executor(spec: ExecutorSpec | None = None, hw: Sequence[str] = ()) -> Executor:
    """The executor `spec` names; `hw`: the hardware profiles a local cluster's workers can
    time for (they are this machine)."""
    spec = spec or ExecutorSpec()
    if spec.name == "local":
        return LocalExecutor()
    from hwnas.executors.dask import DaskExecutor

    return DaskExecutor(spec.scheduler, spec.workers, spec.retries, hw=hw)


__all__ = ["DEVICE", "EXECUTORS", "Executor", "ExecutorSpec", "Failure", "Job",
           "LocalExecutor", "OnOutcome", "Outcome", "open_executor", "run_job"]
