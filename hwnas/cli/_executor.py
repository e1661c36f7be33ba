"""The options that choose where jobs run, shared by `evaluate`, `profile` and `search`."""

from __future__ import annotations

import typer

from hwnas.executors import ExecutorSpec

EXECUTOR_OPT = typer.Option(None, "--executor", help="local (in this process, the default) "
                            "| dask (--scheduler ADDRESS or --workers N).")
SCHEDULER_OPT = typer.Option(None, "--scheduler", help="A running Dask scheduler, e.g. "
                             "tcp://10.0.0.5:8786 (implies --executor dask).")
WORKERS_OPT = typer.Option(None, "--workers", min=1, help="Start a local Dask cluster of N "
                           "worker processes on 127.0.0.1 (implies --executor dask).")
RETRIES_OPT = typer.Option(2, "--retries", min=0, help="Dask: times a job whose worker died is "
                           "run again elsewhere.")


def executor_spec(executor: str | None, scheduler: str | None, workers: int | None,
                  retries: int = 2) -> ExecutorSpec:
    return ExecutorSpec.from_options(executor, scheduler, workers, retries)
