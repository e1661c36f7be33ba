"""Search strategies by name: LINAS (predictor-guided, the default), plain NSGA-II on real
evaluations, and random search. All three start from the same initial population for a
given seed, so their comparison is fair."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwnas.search.loop import Runner, rng_for
from hwnas.search.problem import (
    SearchProblem,
    initial_population,
    make_algorithm,
    non_dominated,
)
from hwnas.search.selection import choose_batch
from hwnas.search.surrogates import Surrogates
from hwnas.supernet.space import SubnetSpec


def _keys(r: Runner) -> list[str]:
    keys = [o.key for o in r.objectives]
    keys += [k for k, _, _ in r.config.constraints.active() if k not in keys]
    return keys


def pending(r: Runner, it: int) -> bool:
    """Iteration `it` has work: budget left, or (on resume) evaluations recorded for it or
    later whose iteration was not closed before the process stopped."""
    return r.used < r.config.evals or any(i >= it for i in r.state.iterations_tried())


def _initial(r: Runner) -> None:
    def plan(rng: np.random.Generator) -> tuple[list[SubnetSpec], dict[str, Any]]:
        return initial_population(r.space, rng, r.config.n_init, set()), {"kind": "initial"}

    r.real_batch(r.planned(0, plan), 0)
    r.close_iteration(0)


# ---- LINAS -------------------------------------------------------------------------------
def propose(r: Runner, rng: np.random.Generator, k: int) -> tuple[list[SubnetSpec],
                                                                  dict[str, Any]]:
    """Fit predictors on the run's real evaluations, search them with the inner algorithm and
    choose `k` new subnets."""
    from pymoo.optimize import minimize

    cfg, space, norm = r.config, r.space, r.norm
    assert norm is not None
    specs, values = r.known()
    sur = Surrogates(space, _keys(r), r.ev.exact, r.ev.latency_predictor(),
                     seed=int(rng.integers(2 ** 31)))
    sur.fit(specs, values)

    def predicted(batch: list[SubnetSpec]) -> list[dict[str, float]]:
        return sur.predict(batch)[0]

    problem = SearchProblem(space, norm, cfg.constraints, predicted)
    order = non_dominated(norm.matrix(values))
    seeds = [specs[i] for i in order] + [s for i, s in enumerate(specs) if i not in set(order)]
    seeds = seeds[:cfg.inner_pop]
    seeds += initial_population(space, rng, cfg.inner_pop - len(seeds), {s.key() for s in seeds})
    X0 = np.vstack([space.encode(s) for s in seeds])
    algo = make_algorithm(cfg.algorithm, space, cfg.inner_pop, len(r.objectives), sampling=X0)
    res = minimize(problem, algo, ("n_gen", cfg.inner_gens), seed=int(rng.integers(2 ** 31)),
                   verbose=False)
    known = r.state.tried()
    cands: dict[str, SubnetSpec] = {}
    for x in np.vstack([np.atleast_2d(res.pop.get("X")), np.atleast_2d(res.opt.get("X"))]):
        s = space.decode(np.round(x).astype(int))
        if s.key() not in known:
            cands.setdefault(s.key(), s)
    pool = list(cands.values())
    if not pool:
        pool = initial_population(space, rng, k, known)
    means, sds = sur.predict(pool)
    M = norm.matrix(means)
    S = np.vstack([norm.sd_row(sd, m) for sd, m in zip(sds, means, strict=True)])
    viol = np.array([sum(max(0.0, g) for g in cfg.constraints.violation(m)) for m in means])
    _, _, anchors = r.feasible_front()
    idx = choose_batch(M, S, viol, k, anchors, norm.ref_point())
    chosen = [pool[i] for i in idx]
    info = {"kind": "linas", "predictors": sur.versions(), "n_candidates": len(pool),
            "predicted": [{"key": pool[i].key(), "mean": means[i], "sd": sds[i]} for i in idx]}
    return chosen, info


def linas(r: Runner) -> None:
    _initial(r)
    it = 1
    while pending(r, it):
        k = min(r.config.n_batch, r.config.evals - r.used)
        batch = r.planned(it, lambda rng, k=k: propose(r, rng, k))  # type: ignore[misc]
        if not batch:
            break
        r.real_batch(batch, it)
        r.close_iteration(it)
        it += 1


# ---- plain NSGA-II on real evaluations ---------------------------------------------------
def nsga2(r: Runner) -> None:
    from pymoo.termination.max_gen import MaximumGenerationTermination

    cfg, space, norm = r.config, r.space, r.norm
    assert norm is not None
    init = initial_population(space, rng_for(cfg.seed, 0), cfg.n_init, set())
    X0 = np.vstack([space.encode(s) for s in init])
    it = 0

    def real_values(batch: list[SubnetSpec]) -> list[dict[str, float]]:
        return r.real_batch(batch, it)

    problem = SearchProblem(space, norm, cfg.constraints, real_values)
    algo = make_algorithm(cfg.algorithm, space, cfg.n_init, len(r.objectives), sampling=X0)
    algo.setup(problem, seed=int(rng_for(cfg.seed, 0, "inner").integers(2 ** 31)),
               termination=MaximumGenerationTermination(10 ** 9))
    stale = 0
    while pending(r, it) and stale < 50:  # stop if generations bring nothing new
        pop = algo.ask()
        batch = [space.decode(np.round(x).astype(int)) for x in pop.get("X")]
        tried = r.state.tried()
        new = list(dict.fromkeys(s.key() for s in batch if s.key() not in tried))
        room = cfg.evals - r.used
        if len(new) > room:  # the budget ends inside this generation
            r.real_batch([s for s in batch if s.key() in set(new[:room])], it)
            r.close_iteration(it)
            return
        stale = 0 if new else stale + 1
        algo.evaluator.eval(problem, pop)
        algo.tell(infills=pop)
        r.close_iteration(it)
        it += 1


# ---- random search -----------------------------------------------------------------------
def random_search(r: Runner) -> None:
    _initial(r)
    it = 1
    while pending(r, it):
        k = min(r.config.n_batch, r.config.evals - r.used)

        def plan(rng: np.random.Generator, k: int = k) -> tuple[list[SubnetSpec],
                                                                dict[str, Any]]:
            return initial_population(r.space, rng, k, r.state.tried()), {"kind": "random"}

        r.real_batch(r.planned(it, plan), it)
        r.close_iteration(it)
        it += 1


STRATEGIES: dict[str, Callable[[Runner], None]] = {
    "linas": linas, "nsga2": nsga2, "random": random_search}
