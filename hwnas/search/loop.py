"""`Runner`: one search run, driven by real evaluations and recorded as store events.

Every decision is a pure function of the config, the seed and the real evaluations made so
far, and every iteration draws from its own generator (seeded by the run's seed and the
iteration), whose state is stored with the planned batch. A resumed run replays the events:
it reuses each recorded batch and evaluation and only evaluates what is missing, so after
Ctrl-C or `kill -9` it ends with the same result as an uninterrupted run with the same seed
(given the same real measurements; cached evaluations in the store make those cheap).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.executors import Executor, Failure, LocalExecutor
from hwnas.progress import Progress, ProgressEvent
from hwnas.search.config import SearchConfig
from hwnas.search.evaluators import Evaluator, Measured
from hwnas.search.objectives import objectives
from hwnas.search.problem import Normaliser, hypervolume, non_dominated
from hwnas.search.selection import spread_pick
from hwnas.search.state import RunState
from hwnas.search.strategy import STRATEGIES, View, initial_design, rng_for
from hwnas.supernet.space import SubnetSpec


def default_run_name(config: SearchConfig) -> str:
    h = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:6]
    return f"{config.strategy}-{config.model}-{config.hw}-seed{config.seed}-{h}"


class Runner:
    def __init__(self, store: Any, name: str, config: SearchConfig, evaluator: Evaluator,
                 progress: Progress | None = None, resume: bool | None = False,
                 executor: Executor | None = None) -> None:
        config.check()
        self.store, self.name, self.config, self.ev = store, name, config, evaluator
        self.space = evaluator.space
        self.progress = progress
        self.resume = resume
        self.objectives = tuple(objectives(config.objectives))
        self.state = RunState()
        self.norm: Normaliser | None = None
        self.executor: Executor = executor or LocalExecutor()

    # ---- opening, recording ---------------------------------------------------------------
    def open(self) -> None:
        stored = self.store.run_config(self.name)
        if stored is None:
            if self.resume is True:
                raise InputError(f"no run named '{self.name}' in the store; drop --resume to "
                                 "start it")
            self.store.create_run(self.name, self.config.to_dict())
        else:
            if self.resume is False:
                raise InputError(f"run '{self.name}' already exists; pass --resume to continue "
                                 "it, or choose another --run name")
            diffs = SearchConfig.from_dict(stored).differences(self.config)
            if diffs:
                raise InputError(f"run '{self.name}' was started with other settings ("
                                 + "; ".join(diffs) + "); resume it with the same arguments "
                                 "or start a new --run")
        self.state = RunState.load(self.store, self.name)
        if self.state.start is None:
            self.record("start", {"config": self.config.to_dict(),
                                  "evaluator": self.ev.describe(),
                                  "space": self.space.to_dict()})

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        self.store.append_event(self.name, kind, payload)
        self.state.apply(kind, json.loads(json.dumps(payload)))

    def emit(self, stage: str, done: int = 0, total: int = 0, what: str = "",
             **info: object) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(stage, done, total, what, {"run": self.name, **info}))

    # ---- the reference and the normalisation ------------------------------------------------
    def reference(self) -> Normaliser:
        if self.state.reference is None:
            self.emit("reference")
            self.record("reference", {"measured": self.ev.reference().to_dict()})
        assert self.state.reference is not None
        ref = self.state.reference.values
        self.norm = Normaliser(self.objectives, dict(ref))
        return self.norm

    def check_feasible(self) -> None:
        """Refuse constraints nothing in the space can meet (exactly for parameters; against
        the full model for accuracy; by prediction for latency when a predictor exists)."""
        c = self.config.constraints
        smallest = self.space.uniform(self.space.width_choices[0], self.space.kv_choices[0],
                                      drop=range(self.space.min_layers,
                                                 self.space.arch.num_layers))
        low = self.ev.exact(smallest)
        if c.max_params is not None and low["params"] > c.max_params:
            raise InputError(f"--max-params {c.max_params:.4g} is infeasible: the smallest "
                             f"subnet of this space has {low['params']:.4g} parameters")
        ref = self.state.reference.values if self.state.reference else {}
        if c.min_accuracy is not None and "accuracy" in ref and \
                c.min_accuracy > ref["accuracy"] + 0.02:
            raise InputError(f"--min-accuracy {c.min_accuracy} is infeasible: the full model "
                             f"itself reaches {ref['accuracy']:.3f} on these tasks")
        bundle = self.ev.latency_predictor()
        if c.max_latency_ms is not None and bundle is not None:
            fastest = float(bundle.predict([smallest]).low[0])
            if fastest > c.max_latency_ms:
                raise InputError(f"--max-latency-ms {c.max_latency_ms} is infeasible: even the "
                                 f"smallest subnet is predicted at {fastest:.1f} ms")

    # ---- real evaluations --------------------------------------------------------------------
    @property
    def used(self) -> int:
        return self.state.used

    def real_batch(self, specs: list[SubnetSpec], iteration: int) -> list[dict[str, float]]:
        """Evaluate for real, through the executor, the subnets of `specs` not evaluated yet;
        record each (in the batch's order, whatever order they finish in: the driver is the
        only writer). Returns every spec's values; a failed subnet gets values no objective
        counts as good (`batch.penalty_values`)."""
        from hwnas.search.batch import evaluate_batch

        tried = self.state.tried()
        todo = list({s.key(): s for s in specs if s.key() not in tried}.values())

        def record(spec: SubnetSpec, got: Measured | Failure) -> None:
            if isinstance(got, Failure):
                self.record("failed", {"iteration": iteration, "spec": spec.to_dict(),
                                       "key": spec.key(), "reason": got.reason,
                                       "failure": got.to_dict(), "n": self.used + 1})
                self.emit("failed", self.used, self.config.evals, iteration=iteration,
                          reason=got.reason)
                return
            self.record("eval", {"iteration": iteration, "spec": spec.to_dict(),
                                 "key": spec.key(), "measured": got.to_dict(),
                                 "n": self.used + 1})
            self.emit("eval", self.used, self.config.evals, iteration=iteration,
                      values=got.values)

        if todo:
            evaluate_batch(self.ev, todo, self.executor, record)
        return [self.values_of(s) for s in specs]

    def values_of(self, spec: SubnetSpec) -> dict[str, float]:
        rec = self.state.evals.get(spec.key())
        if rec is not None:
            return rec.measured.values
        from hwnas.search.batch import penalty_values

        ref = self.state.reference.values if self.state.reference else {}
        return penalty_values(self.objectives, ref, self.ev.exact(spec))

    def known(self) -> tuple[list[SubnetSpec], list[dict[str, float]]]:
        recs = list(self.state.evals.values())
        return [r.spec for r in recs], [r.measured.values for r in recs]

    def feasible_front(self) -> tuple[list[SubnetSpec], list[dict[str, float]], np.ndarray]:
        assert self.norm is not None
        specs, values = self.known()
        keep = [i for i, v in enumerate(values) if self.config.constraints.feasible(v)]
        specs, values = [specs[i] for i in keep], [values[i] for i in keep]
        F = self.norm.matrix(values)
        nd = non_dominated(F)
        return [specs[i] for i in nd], [values[i] for i in nd], F[nd] if len(nd) else F[:0]

    # ---- iterations ----------------------------------------------------------------------
    def planned(self, iteration: int,
                plan: Callable[[np.random.Generator], tuple[list[SubnetSpec], dict[str, Any]]]
                ) -> list[SubnetSpec]:
        rng = rng_for(self.config.seed, iteration)
        state = rng.bit_generator.state
        got = self.state.batches.get(iteration)
        if got is not None:
            if got["rng_state"] != json.loads(json.dumps(state)):
                raise InputError(f"run '{self.name}': the stored RNG state of iteration "
                                 f"{iteration} differs from this seed's; was it started with "
                                 "another hwnas version?")
            return [SubnetSpec.from_dict(s, "run event") for s in got["specs"]]
        self.emit("plan", self.used, self.config.evals, iteration=iteration)
        specs, info = plan(rng)
        self.record("batch", {"iteration": iteration, "specs": [s.to_dict() for s in specs],
                              "rng_state": state, **info})
        return specs

    def close_iteration(self, iteration: int) -> None:
        if iteration not in self.state.iterations:
            specs, _, F = self.feasible_front()
            assert self.norm is not None
            hv = hypervolume(F, self.norm.ref_point())
            self.record("iteration", {"iteration": iteration, "evals_used": self.used,
                                      "front_size": len(specs), "hypervolume": hv,
                                      "front": [s.key() for s in specs]})
        info = self.state.iterations[iteration]
        self.emit("iteration", info["evals_used"], self.config.evals, iteration=iteration,
                  front_size=info["front_size"], hypervolume=info["hypervolume"])

    # ---- the whole run -------------------------------------------------------------------
    def view(self) -> View:
        assert self.norm is not None
        specs, values = self.known()
        front, _, F = self.feasible_front()
        return View(self.config, self.space, self.objectives, self.norm, tuple(specs),
                    tuple(values), frozenset(self.state.tried()), dict(self.state.batches),
                    self.ev.exact, self.ev.latency_predictor(), self.values_of,
                    (tuple(front), F), self.layer_order)

    @functools.cached_property
    def layer_order(self) -> tuple[int, ...] | None:
        """The evaluator's layer order, asked once per run (it may cost a forward pass)."""
        return self.ev.layer_order()

    def pending(self, iteration: int) -> bool:
        """Iteration `iteration` has work: budget left, or (on resume) evaluations recorded for
        it or later whose iteration was not closed before the process stopped."""
        return self.used < self.config.evals or any(
            i >= iteration for i in self.state.iterations_tried())

    def run(self) -> RunState:
        """The one loop: the shared initial design, then the strategy's batches until the
        budget is spent or it has nothing new to propose; then the re-measurement."""
        import hwnas.search.strategies  # noqa: F401  (registers the strategies)

        self.open()
        if self.state.done is not None:
            self.reference()
            return self.state
        self.reference()
        self.check_feasible()
        strategy = STRATEGIES.get(self.config.strategy)()

        def initial(rng: np.random.Generator) -> tuple[list[SubnetSpec], dict[str, Any]]:
            return (initial_design(self.space, rng, self.config.n_init, self.layer_order),
                    {"kind": "initial"})

        self.real_batch(self.planned(0, initial), 0)
        self.close_iteration(0)
        it = 1
        while self.pending(it):
            k = min(self.config.n_batch, self.config.evals - self.used)
            batch = self.planned(it, lambda rng, k=k: strategy.propose(  # type: ignore[misc]
                self.view(), rng, k))
            if not batch:
                break
            self.real_batch(batch, it)
            self.close_iteration(it)
            it += 1
        self.finish()
        return self.state

    def finish(self) -> None:
        from hwnas.search.final import remeasure_front

        remeasure_front(self)
        last = max(self.state.iterations) if self.state.iterations else -1
        self.record("done", {"evals_used": self.used, "iterations": last + 1})
        self.emit("done", self.used, self.config.evals)

    def pick_front(self) -> list[SubnetSpec]:
        specs, _, F = self.feasible_front()
        if self.config.final_max == 0:
            return []
        return [specs[i] for i in spread_pick(F, self.config.final_max)]
