"""`DaskExecutor`: jobs on a `dask.distributed` cluster; the only module that imports dask.

Either connect to a running scheduler (`scheduler="tcp://host:8786"`) or start a
`LocalCluster` of `workers` processes bound to 127.0.0.1 (no dashboard, nothing on other
addresses). Each job is submitted with its resources (`Job.resources`): every worker declares
``device=1`` (its GPU, or its cores) and, where it can time for a hardware profile, that
profile's name ``=1``; every job takes the whole device and a timing job also the profile, so a
worker runs one job at a time and a timing job only where that hardware is. Workers that share
a machine (a local cluster) also share its cores: there, timing jobs hold the host lock
exclusively and every other job shared (`hwnas.executors.hostlock`).

Faults: a job whose worker dies (`KilledWorker`, a lost connection) is submitted again, up to
`retries` times, and runs on whichever worker is free; a job that raises comes back as a
`Failure` (never retried: out of memory on a subnet is deterministic). Results return to the
driver, which alone writes the store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from hwnas.errors import InputError, MissingDependencyError
from hwnas.executors.base import OnOutcome, raise_input_errors, unique
from hwnas.executors.job import DEVICE, Failure, Job, Outcome, Ran, run_job

if TYPE_CHECKING:
    from distributed import Client, Future, LocalCluster

T = TypeVar("T")
DEFAULT_RETRIES = 2


def _distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise MissingDependencyError("dask[distributed]", "--executor dask",
                                     "pip install 'hwnas[dask]'") from None


class DaskExecutor:
    name = "dask"
    in_process = False

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 retries: int = DEFAULT_RETRIES, hw: Sequence[str] = (),
                 threads_per_worker: int | None = None) -> None:
        _distributed()
        from distributed import Client

        if (scheduler is None) == (workers is None):
            raise InputError("--executor dask: give either --scheduler ADDRESS or --workers N")
        if retries < 0:
            raise InputError(f"--retries {retries}: must be 0 or more")
        self.retries = retries
        self.scheduler = scheduler
        self.workers = workers
        self.cluster: LocalCluster | None = None
        self._lock_dir: str | None = None
        self.lock: str | None = None
        self._seq = 0
        if workers is not None:
            if workers < 1:
                raise InputError(f"--workers {workers}: give at least one worker")
            self.cluster = _local_cluster(workers, hw, threads_per_worker)
            self._lock_dir = tempfile.mkdtemp(prefix="hwnas-host-lock-")
            self.lock = os.path.join(self._lock_dir, "host.lock")
            self.client: Client = Client(self.cluster)
        else:
            try:
                self.client = Client(scheduler, timeout="20s")
            except OSError as e:
                raise InputError(f"--scheduler {scheduler}: cannot connect ({e}); start one "
                                 "with `dask scheduler` and give its tcp:// address") from None

    # ---- the cluster's workers -------------------------------------------------------------
    def worker_resources(self) -> dict[str, dict[str, float]]:
        info = self.client.scheduler_info()
        return {addr: dict(w.get("resources") or {}) for addr, w in info["workers"].items()}

    def _check_resources(self, jobs: Sequence[Job[T]]) -> None:
        """A job whose resources no worker has would wait for ever: say what to start."""
        have = self.worker_resources()
        for need in {tuple(sorted(j.resources().items())) for j in jobs}:
            if not any(all(r.get(k, 0.0) >= v for k, v in need) for r in have.values()):
                names = ",".join(f"{k}={v:g}" for k, v in need)
                raise InputError(f"no worker of {self._where()} declares the resources "
                                 f"{names}; start workers with `dask worker ADDRESS "
                                 f"--resources \"{names}\"` (docs: README, Scale-out)")

    def _where(self) -> str:
        return f"scheduler {self.scheduler}" if self.scheduler else "the local cluster"

    # ---- running -----------------------------------------------------------------------------
    def _submit(self, job: Job[T]) -> Future:
        self._seq += 1
        return self.client.submit(_on_worker, job.fn, job.args, job.exclusive, self.lock,
                                  key=f"hwnas-{job.key}-{self._seq}", pure=False,
                                  resources=job.resources())

    def map(self, jobs: Sequence[Job[T]],
            on_outcome: OnOutcome[T] | None = None) -> list[Outcome[T]]:
        from distributed import as_completed

        todo = unique(jobs)
        if not todo:
            return []
        self._check_resources(todo)
        attempts = {j.key: 1 for j in todo}
        by_future: dict[Future, Job[T]] = {}
        for j in todo:
            by_future[self._submit(j)] = j
        order = [j.key for j in todo]
        done: dict[str, Outcome[T]] = {}
        flushed = 0
        pending = as_completed(list(by_future))
        try:
            for fut in pending:
                job = by_future.pop(fut)
                out = self._outcome(fut, job, attempts[job.key])
                if out is None:  # the worker died: again, elsewhere
                    attempts[job.key] += 1
                    again = self._submit(job)
                    by_future[again] = job
                    pending.add(again)
                    continue
                raise_input_errors(out)
                done[job.key] = out
                while flushed < len(order) and order[flushed] in done:
                    if on_outcome is not None:
                        on_outcome(done[order[flushed]])
                    flushed += 1
        finally:
            for fut in by_future:
                fut.cancel()
        return [done[j.key] for j in jobs]

    def _outcome(self, fut: Future, job: Job[T], attempt: int) -> Outcome[T] | None:
        from distributed import KilledWorker

        err = fut.exception()
        if err is None:
            worker, ran = fut.result()
            return Outcome(job.key, ran.value, ran.failure, attempt, worker, ran.host,
                           ran.started, ran.ended)
        lost = isinstance(err, KilledWorker) or isinstance(err, (OSError, ConnectionError)) \
            or "CommClosed" in type(err).__name__
        if lost and attempt <= self.retries:
            return None
        kind = "lost" if lost else "error"
        msg = (f"its worker died {attempt} time(s) (retry budget {self.retries}); out of "
               f"memory is the usual cause" if lost else str(err).splitlines()[0][:500])
        return Outcome(job.key, None, Failure(kind, type(err).__name__, msg), attempt)

    def describe(self) -> dict[str, object]:
        return {"executor": "dask", "scheduler": self.scheduler, "workers": self.workers,
                "retries": self.retries}

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self._lock_dir is not None:
            shutil.rmtree(self._lock_dir, ignore_errors=True)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _on_worker(fn: Callable[..., T], args: tuple[object, ...], exclusive: bool,
               lock: str | None) -> tuple[str, Ran[T]]:
    """`run_job` on a Dask worker, with the worker's address for the outcome."""
    from distributed import get_worker

    return get_worker().address, run_job(fn, args, exclusive, lock)


def _local_cluster(workers: int, hw: Sequence[str], threads: int | None) -> LocalCluster:
    """`workers` processes on 127.0.0.1, each one device: resources ``device=1`` and one per
    hardware profile named; torch in each uses its share of the cores. A worker that dies is
    not given a second chance at the same job by the scheduler: the executor's retry budget
    decides (``allowed-failures`` 0)."""
    import dask
    from distributed import LocalCluster

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    share = threads or max(1, cores // workers)
    resources = {DEVICE: 1.0, **{h: 1.0 for h in hw}}
    env = {"OMP_NUM_THREADS": str(share), "MKL_NUM_THREADS": str(share)}
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.nanny.pre-spawn-environ": env}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address=None, resources=resources,
                            silence_logs=40,
                            # no dashboard; its small HTTP server (health) on a free
                            # loopback port rather than 8787
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
