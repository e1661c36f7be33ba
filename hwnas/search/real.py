"""`RealEvaluator`: accuracy from `hwnas.evaluation.evaluate` (cached in the store), latency
from the profiler (`measure_subnet`, the profile's primary metric, cached in the store), or,
with ``latency="predicted"``, from the profile's layer-composed latency predictor; parameters
and memory exact.

The layer-composed predictor is trained once per run from the profile's layer measurements
and saved in the run's folder, so a resumed run uses the very same one. Without layer
measurements for the profile and model the search stops with the command to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwnas.errors import HwnasError, InputError, NotFoundError
from hwnas.executors import Executor, Failure, LocalExecutor
from hwnas.progress import Progress
from hwnas.search.evaluators import Description, EvaluatorOptions, Measured, analytic
from hwnas.search.quality import ITEM_SEED, task_plan
from hwnas.store import Storage
from hwnas.supernet.space import SearchSpace, SubnetSpec

if TYPE_CHECKING:
    from hwnas.hw_profiles import HardwareProfile
    from hwnas.predictors.train import LatencyBundle
    from hwnas.search.config import SearchConfig
    from hwnas.supernet.supernet import Supernet


LATENCY_SUBDIR = "latency_predictor"  # in a run's folder


def check_tasks(tasks: tuple[str, ...]) -> None:
    from hwnas.datasets.tasks import get_task

    for t in tasks:
        try:
            get_task(t)
        except NotFoundError as e:
            raise InputError(f"--tasks: {e.args[0]}") from None


def latency_bundle(hw: HardwareProfile | str, model: str, store: Storage, folder: Path,
                   seed: int = 0) -> LatencyBundle:
    """The profile's layer-composed latency predictor: loaded from the run's folder, or
    trained from the store's layer measurements and saved there."""
    from hwnas.predictors import persist
    from hwnas.predictors.api import profile_data, resolve_target
    from hwnas.predictors.train import train_latency

    if (folder / persist.SIDECAR).is_file():
        return persist.load_latency(folder, None, False)
    t = resolve_target(hw, model)
    data = profile_data(t, store)
    bundle = train_latency(t.hw.name, t.space, t.hw.dtype, t.primary, data, data.subnets, seed)
    persist.save_latency(bundle, folder, t.hw.to_dict(), model)
    return persist.load_latency(folder, None, False)


class RealEvaluator:
    def __init__(self, sn: Supernet, hw: HardwareProfile, config: SearchConfig,
                 store: Storage, bundle: LatencyBundle | None, lock: str | Path | None = None,
                 executor: Executor | None = None) -> None:
        self.sn, self.hw, self.config, self.store, self.bundle = sn, hw, config, store, bundle
        self.space: SearchSpace = sn.space
        self.lock = lock
        self.context = hw.primary.prefill_tokens + hw.primary.decode_tokens
        self.executor: Executor = executor or LocalExecutor()
        self.plan = task_plan(config.tasks, config.objectives, config.constraints.min_accuracy)

    # ---- pieces ----------------------------------------------------------------------------
    def exact(self, spec: SubnetSpec) -> dict[str, float]:
        return analytic(self.space.arch, spec, self.hw.dtype, self.context, self.hw.batch)

    def _latency(self, spec: SubnetSpec) -> tuple[float, dict[str, object]]:
        """The predicted latency (``latency="predicted"``); measured latency is timed as
        timing jobs (`hwnas.search.spread.time_batch`)."""
        from hwnas.search.surrogates import latency_floor, predicted_latency

        assert self.bundle is not None, "latency none: nothing asks for a latency"

        mean, _ = predicted_latency(self.bundle, [spec])
        return float(mean[0]), {"source": "layer-composed predictor",
                                "floored": bool(mean[0] <= latency_floor(self.bundle))}

    # ---- the protocol ----------------------------------------------------------------------
    def evaluate(self, spec: SubnetSpec) -> Measured:
        """One subnet, as `evaluate_batch` of it; a failed job raises."""
        got = self.evaluate_batch([spec])[0]
        if isinstance(got, Failure):
            error = InputError if got.kind == "input" else HwnasError
            raise error(f"evaluating {spec.key()} failed ({got.reason})")
        return got

    def reference(self) -> Measured:
        """The full model, and `accuracy_chance` (the tasks' mean chance accuracy): the floor
        of the accuracy objective's normalisation, so that subnets no better than guessing add
        nothing to the hypervolume."""
        from hwnas.datasets.tasks import chance_accuracy
        from hwnas.search.spread import full_model

        values, (lat, lat_detail), detail = full_model(self)
        chance = [c for c in map(chance_accuracy, self.plan.search) if c is not None]
        if chance and "accuracy" in values:
            values["accuracy_chance"] = float(np.mean(chance))
        if chance and "gold_prob" in values:  # guessing gives the gold 1/k as well
            values["gold_prob_chance"] = float(np.mean(chance))
        from hwnas.search.spread import with_latency

        values = with_latency({**values, **self.exact(self.space.full())}, (lat, lat_detail))
        return Measured(values, {"tasks": detail, "latency": lat_detail, "full_model": True,
                                 "limit": self.config.limit})

    def evaluate_batch(self, specs: list[SubnetSpec]) -> list[Measured | Failure]:
        """`evaluate` of each, as jobs on the executor (`hwnas.search.spread`)."""
        from hwnas.search.spread import evaluate_batch

        return evaluate_batch(self, specs)

    def remeasure(self, specs: list[SubnetSpec | None],
                  progress: Progress | None = None) -> list[Measured]:
        """Accuracy on `final_limit` items for each, then fresh timing of all of them (the
        full model included) interleaved in one group, not from the store; as executor jobs
        (`hwnas.search.spread`), which the local executor runs in this process."""
        from hwnas.search.spread import remeasure

        return remeasure(self, specs, progress)

    def latency_predictor(self) -> LatencyBundle | None:
        return self.bundle

    def layer_order(self) -> tuple[int, ...] | None:
        return self.sn.layer_order()

    def describe(self) -> Description:
        return {"evaluator": "real", "hw": self.hw.name, "model": self.sn.name,
                "fingerprint": self.sn.fingerprint, "latency": self.config.latency,
                "item_seed": ITEM_SEED, "primary": self.hw.primary.describe(),
                "repair": self.config.repair}


def build(config: SearchConfig, store: Storage, options: EvaluatorOptions,
          progress: Progress | None, run_dir: Path) -> RealEvaluator:
    """Check the inputs (tasks, profiling data) before loading the model, then load it
    (unless `options.supernet` gives it)."""
    from hwnas.hw_profiles import load_profile

    hw = load_profile(config.hw)
    check_tasks(config.tasks)
    folder = run_dir / LATENCY_SUBDIR
    bundle = (None if config.latency == "none" else
              latency_bundle(hw, config.model, store, folder, config.seed))
    supernet = options.supernet
    if supernet is None:
        from hwnas.supernet.supernet import Supernet

        supernet = Supernet.load(config.model, dtype=hw.dtype)
    return RealEvaluator(supernet, hw, config, store, bundle, options.lock, options.executor)
