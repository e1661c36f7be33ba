"""`search`: build the evaluator a config names and run (or resume) a search."""

from __future__ import annotations

from pathlib import Path

from hwnas.errors import InputError, NotFoundError
from hwnas.executors import Executor
from hwnas.progress import Progress
from hwnas.search.config import SearchConfig
from hwnas.search.evaluators import EVALUATORS, Evaluator, EvaluatorOptions
from hwnas.search.loop import Runner, default_run_name
from hwnas.search.state import RunState
from hwnas.store import Storage


def run_dir(name: str) -> Path:
    from hwnas.paths import sub_dir
    return sub_dir("runs", name)


def latency_dir(name: str) -> Path:
    """Where run `name` keeps the profile's latency predictor it was started with."""
    from hwnas.search.real import LATENCY_SUBDIR
    return run_dir(name) / LATENCY_SUBDIR


def build_evaluator(config: SearchConfig, store: Storage, name: str,
                    progress: Progress | None = None,
                    options: EvaluatorOptions | None = None) -> Evaluator:
    try:
        build = EVALUATORS.get(config.evaluator)
    except NotFoundError as e:
        raise InputError(f"--evaluator: {e}") from None
    return build(config, store, options or EvaluatorOptions(), progress, run_dir(name))


def search(config: SearchConfig, store: Storage, name: str | None = None,
           resume: bool | None = False, progress: Progress | None = None,
           evaluator: Evaluator | None = None, executor: Executor | None = None,
           **options: object) -> tuple[str, RunState]:
    """Run (or, with `resume`, continue) a search; returns the run's name and final state.
    `resume=None` continues a run of that name when one exists and starts it otherwise.
    `executor` runs the real evaluations (default: in this process). `options` are the
    evaluator's (`EvaluatorOptions`: `lock`, `supernet`); an unknown name is an
    `InputError`."""
    opts = EvaluatorOptions.of(executor=executor, **options)  # a typo fails at once
    config.check()
    if evaluator is None and config.evaluator == "real":
        from hwnas.hw_profiles import load_profile
        load_profile(config.hw)  # a bad profile fails before a run or its folder exists
    name = name or default_run_name(config)
    if resume is True and store.run_config(name) is None:
        raise InputError(f"no run named '{name}' in the store; drop --resume to start it")
    stored = store.run_config(name)
    if resume is False and stored is not None:
        raise InputError(f"run '{name}' already exists; pass --resume to continue it, or "
                         "choose another --run name")
    if stored is not None:  # refuse other settings before loading any model
        diffs = SearchConfig.from_dict(stored).differences(config)
        if diffs:
            raise InputError(f"run '{name}' was started with other settings ("
                             + "; ".join(diffs) + "); resume it with the same arguments "
                             "or start a new --run")
    ev = evaluator or build_evaluator(config, store, name, progress, opts)
    runner = Runner(store, name, config, ev, progress, resume, executor)
    return name, runner.run()
