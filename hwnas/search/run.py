"""`search`: build the evaluator a config names and run (or resume) a search."""

from __future__ import annotations

from typing import Any

from hwnas.errors import InputError, NotFoundError
from hwnas.search.config import SearchConfig
from hwnas.search.evaluators import EVALUATORS
from hwnas.search.loop import Progress, Runner, default_run_name
from hwnas.search.state import RunState


def run_dir(name: str) -> Any:
    from hwnas.paths import sub_dir
    return sub_dir("runs", name)


def latency_dir(name: str) -> Any:
    """Where run `name` keeps the profile's latency predictor it was started with."""
    from hwnas.search.real import LATENCY_SUBDIR
    return run_dir(name) / LATENCY_SUBDIR


def build_evaluator(config: SearchConfig, store: Any, name: str,
                    progress: Progress | None = None, **options: Any) -> Any:
    try:
        build = EVALUATORS.get(config.evaluator)
    except NotFoundError as e:
        raise InputError(f"--evaluator: {e}") from None
    return build(config, store, progress=progress, run_dir=run_dir(name), **options)


def search(config: SearchConfig, store: Any, name: str | None = None,
           resume: bool | None = False, progress: Progress | None = None,
           evaluator: Any = None, **options: Any) -> tuple[str, RunState]:
    """Run (or, with `resume`, continue) a search; returns the run's name and final state.
    `resume=None` continues a run of that name when one exists and starts it otherwise."""
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
    ev = evaluator or build_evaluator(config, store, name, progress, **options)
    runner = Runner(store, name, config, ev, progress, resume)
    return name, runner.run()
