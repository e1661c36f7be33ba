"""Search strategies by name (`hwnas.search.strategy.STRATEGIES`). Every one starts from the
same structured initial design for a seed (the loop's iteration 0), so their comparison is
fair.

- ``linas``: predictor-guided. Surrogates of what is unknown (quality) chosen by
  cross-validated rank correlation (the ridge with the model's layer order as a prior,
  where it is known), latency and size taken as known; candidates from an inner NSGA-II on
  the posterior mean, from one- and two-gene mutations of the real front, and (where the
  layer order is known) from greedy pruning steps of the front and the ranked family
  (ShortGPT's cut of every depth x uniform widths x uniform KV groups); the batch by
  Monte-Carlo expected hypervolume improvement with fantasised points.
- ``linas-v1``: the first LINAS, kept as a reference: XGBoost ensembles only, latency's
  spread earns exploration, candidates only from the inner NSGA-II's final population,
  optimistic greedy selection.
- ``nsga2``: plain NSGA-II on real evaluations through pymoo's ask/tell, its state replayed
  from the recorded batches.
- ``random``: graded random subnets.
- ``local``: mutations of the real front.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.search.problem import SearchProblem, initial_population, make_algorithm, non_dominated
from hwnas.search.selection import choose_batch, choose_batch_ehvi
from hwnas.search.strategy import (
    STRATEGIES,
    Proposal,
    View,
    mutations,
    ranked_family,
    ranked_steps,
    rng_for,
)
from hwnas.search.surrogates import Surrogates
from hwnas.supernet.space import SubnetSpec


def _inner_search(view: View, sur: Surrogates, rng: np.random.Generator) -> list[SubnetSpec]:
    """The final population and front of an NSGA-II run on the surrogates' means, seeded
    with the real front first."""
    from pymoo.optimize import minimize

    cfg, space, norm = view.config, view.space, view.norm
    specs, values = list(view.specs), list(view.values)

    def predicted(batch: list[SubnetSpec]) -> list[dict[str, float]]:
        return sur.predict(batch)[0]

    problem = SearchProblem(space, norm, cfg.constraints, predicted)
    order = non_dominated(norm.matrix(values)) if values else []
    seeds = [specs[i] for i in order] + [s for i, s in enumerate(specs) if i not in set(order)]
    seeds = seeds[:cfg.inner_pop]
    seeds += initial_population(space, rng, cfg.inner_pop - len(seeds), {s.key() for s in seeds})
    X0 = np.vstack([space.encode(s) for s in seeds])
    algo = make_algorithm(cfg.algorithm, space, cfg.inner_pop, len(view.objectives), sampling=X0)
    res = minimize(problem, algo, ("n_gen", cfg.inner_gens), seed=int(rng.integers(2 ** 31)),
                   verbose=False)
    return [space.decode(np.round(x).astype(int))
            for x in np.vstack([np.atleast_2d(res.pop.get("X")), np.atleast_2d(res.opt.get("X"))])]


def _fresh(view: View, specs: list[SubnetSpec]) -> list[SubnetSpec]:
    return list({s.key(): s for s in specs if s.key() not in view.tried}.values())


def _predicted_info(pool: list[SubnetSpec], idx: list[int], means: list[dict[str, float]],
                    sds: list[dict[str, float]]) -> list[dict[str, Any]]:
    return [{"key": pool[i].key(), "mean": means[i], "sd": sds[i]} for i in idx]


def _normalised(view: View, means: list[dict[str, float]], sds: list[dict[str, float]]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted means and spreads in the search's normalised, minimised units, and each
    candidate's summed predicted constraint violation (0: feasible)."""
    norm, cons = view.norm, view.config.constraints
    M = norm.matrix(means)
    S = np.vstack([norm.sd_row(sd, m) for sd, m in zip(sds, means, strict=True)])
    viol = np.array([sum(max(0.0, g) for g in cons.violation(m)) for m in means])
    return M, S, viol


class Linas:
    """Predictor-guided search (see the module docstring)."""

    kind = "linas"
    quality_models: tuple[str, ...] = ("ridge", "xgb")
    n_mutants = 60
    n_samples = 64

    def pool(self, view: View, sur: Surrogates, rng: np.random.Generator) -> list[SubnetSpec]:
        front = list(view.front[0])
        cands = _inner_search(view, sur, rng)
        cands += mutations(view.space, front, rng, self.n_mutants, set(view.tried))
        if view.layer_order is not None:
            cands += ranked_steps(view.space, front, view.layer_order, set(view.tried))
            cands += ranked_family(view.space, view.layer_order, set(view.tried))
        return _fresh(view, cands)

    def choose(self, view: View, sur: Surrogates, pool: list[SubnetSpec], k: int,
               rng: np.random.Generator) -> tuple[list[int], list[dict[str, float]],
                                                  list[dict[str, float]]]:
        means, sds = sur.predict(pool)
        known = sur.known()
        sds = [{key: (0.0 if key in known else v) for key, v in sd.items()} for sd in sds]
        M, S, viol = _normalised(view, means, sds)
        idx = choose_batch_ehvi(M, S, viol, k, view.front[1], view.norm.ref_point(), rng,
                                self.n_samples)
        return idx, means, sds

    def propose(self, view: View, rng: np.random.Generator, k: int) -> Proposal:
        sur = Surrogates(view.space, view.keys(), view.exact, view.latency_predictor,
                         seed=int(rng.integers(2 ** 31)), quality_models=self.quality_models,
                         layer_order=view.layer_order)
        sur.fit(list(view.specs), list(view.values))
        pool = self.pool(view, sur, rng) or initial_population(view.space, rng, k,
                                                               set(view.tried))
        idx, means, sds = self.choose(view, sur, pool, k, rng)
        return [pool[i] for i in idx], {
            "kind": self.kind, "predictors": sur.versions(), "n_candidates": len(pool),
            "predicted": _predicted_info(pool, idx, means, sds)}


class LinasV1(Linas):
    """The first LINAS (see the module docstring), for benchmarks."""

    kind = "linas-v1"
    quality_models = ("xgb",)

    def pool(self, view: View, sur: Surrogates, rng: np.random.Generator) -> list[SubnetSpec]:
        return _fresh(view, _inner_search(view, sur, rng))

    def choose(self, view: View, sur: Surrogates, pool: list[SubnetSpec], k: int,
               rng: np.random.Generator) -> tuple[list[int], list[dict[str, float]],
                                                  list[dict[str, float]]]:
        means, sds = sur.predict(pool)
        M, S, viol = _normalised(view, means, sds)
        return choose_batch(M, S, viol, k, view.front[1], view.norm.ref_point()), means, sds


class NSGA2:
    """Plain NSGA-II on real evaluations (pymoo ask/tell, population `--init`). Its state is
    not kept: each call replays the recorded generations (ask, then tell the really measured
    values) from the run's seed, which pymoo's determinism makes exact, then asks once more.
    A generation that brings nothing new is told at once (its values are known) and another
    asked, up to 50 times; the batch records how many generations it used."""

    max_stale = 50

    def _setup(self, view: View) -> tuple[Any, SearchProblem]:
        from pymoo.termination.max_gen import MaximumGenerationTermination

        cfg, space = view.config, view.space
        init = list(view.batches[0]["specs"]) if 0 in view.batches else []
        X0 = np.vstack([space.encode(SubnetSpec.from_dict(s, "run event")) for s in init])
        problem = SearchProblem(space, view.norm, cfg.constraints,
                                lambda b: [view.values_of(s) for s in b])
        algo = make_algorithm(cfg.algorithm, space, len(init), len(view.objectives),
                              sampling=X0)
        algo.setup(problem, seed=int(rng_for(cfg.seed, 0, "inner").integers(2 ** 31)),
                   termination=MaximumGenerationTermination(10 ** 9))
        return algo, problem

    @staticmethod
    def _generation(algo: Any, problem: SearchProblem) -> tuple[Any, list[SubnetSpec]]:
        pop = algo.ask()
        return pop, [problem.space.decode(np.round(x).astype(int)) for x in pop.get("X")]

    def propose(self, view: View, rng: np.random.Generator, k: int) -> Proposal:
        algo, problem = self._setup(view)
        gens = [view.batches[i].get("generations", 1) for i in sorted(view.batches)]
        for n in gens:  # replay: iteration 0 is the initial design, NSGA-II's first ask
            for _ in range(n):
                pop, _ = self._generation(algo, problem)
                algo.evaluator.eval(problem, pop)
                algo.tell(infills=pop)
        for used in range(1, self.max_stale + 1):
            pop, batch = self._generation(algo, problem)
            new = _fresh(view, batch)
            if new:
                return new[:k], {"kind": "nsga2", "generations": used}
            algo.evaluator.eval(problem, pop)
            algo.tell(infills=pop)
        return [], {"kind": "nsga2", "generations": self.max_stale}


class RandomSearch:
    def propose(self, view: View, rng: np.random.Generator, k: int) -> Proposal:
        return initial_population(view.space, rng, k, set(view.tried)), {"kind": "random"}


class LocalSearch:
    """One- and two-gene mutations of the real front's members."""

    def propose(self, view: View, rng: np.random.Generator, k: int) -> Proposal:
        got = mutations(view.space, list(view.front[0]) or list(view.specs), rng, k,
                        set(view.tried))
        if len(got) < k:  # a front whose every neighbour is known: widen with random subnets
            got += initial_population(view.space, rng, k - len(got),
                                      set(view.tried) | {s.key() for s in got})
        return got, {"kind": "local"}


STRATEGIES.register("linas", Linas)
STRATEGIES.register("linas-v1", LinasV1)
STRATEGIES.register("nsga2", NSGA2)
STRATEGIES.register("random", RandomSearch)
STRATEGIES.register("local", LocalSearch)
# external references (the optional extra `optuna`): imported when asked for
STRATEGIES.register("optuna-tpe", "hwnas.search.optuna_strategies:OptunaTPE")
STRATEGIES.register("optuna-gp", "hwnas.search.optuna_strategies:OptunaGP")
