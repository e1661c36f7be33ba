"""The pymoo problem over the search space's integer encoding, its repair, the algorithms
by name, and the fixed normalisation shared by the search and the hypervolume.

One `SearchProblem` serves every use: its values come from a function of the subnets (the
predictors inside LINAS, or the real evaluations for plain NSGA-II), its objectives and
constraints are lists (``n_obj = len(objectives)``, constraints in ``out["G"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair

from hwnas.errors import InputError, MissingDependencyError, NotFoundError
from hwnas.registry import Registry
from hwnas.search.objectives import Constraints, Objective
from hwnas.supernet.space import SearchSpace, SubnetSpec

ValuesFn = Callable[[list[SubnetSpec]], list[dict[str, float]]]


@dataclass(frozen=True)
class Normaliser:
    """Maps measured values to minimised, unit-free objectives against the full model."""

    objectives: tuple[Objective, ...]
    reference: dict[str, float]

    def floor(self, o: Objective) -> float:
        """A share objective's floor (chance accuracy), when the reference carries one."""
        return float(self.reference.get(f"{o.key}_chance", 0.0)) if o.scale == "share" else 0.0

    def row(self, values: dict[str, float]) -> np.ndarray:
        return np.array([o.normalise(float(values[o.key]), self.reference.get(o.key, 1.0),
                                     self.floor(o)) for o in self.objectives])

    def matrix(self, values: Sequence[dict[str, float]]) -> np.ndarray:
        if not values:
            return np.zeros((0, len(self.objectives)))
        return np.vstack([self.row(v) for v in values])

    def sd_row(self, sds: dict[str, float], means: dict[str, float]) -> np.ndarray:
        """Predicted spreads in the same normalised units (first order for the log scale)."""
        out = []
        for o in self.objectives:
            sd, ref = abs(float(sds[o.key])), self.reference.get(o.key) or 1.0
            if o.scale == "share":
                out.append(sd / max(1.0 - self.floor(o), 1e-9))
            elif o.scale == "log":
                out.append(sd / max(float(means[o.key]), 1e-9) / max(np.log(ref), 1e-9))
            else:
                out.append(sd / ref)
        return np.array(out)

    def ref_point(self) -> np.ndarray:
        return np.array([o.ref_point() for o in self.objectives])

    def to_dict(self) -> dict[str, Any]:
        return {"objectives": [o.name for o in self.objectives],
                "reference": self.reference,
                "scale": {o.name: o.scale for o in self.objectives},
                "ref_point": self.ref_point().tolist()}


class SubnetRepair(Repair):
    """Round and clip to the bounds, keep at least `min_layers` layers, and write the
    canonical encoding (genes of dropped layers at their largest choice)."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def _do(self, problem: Any, X: Any, random_state: Any = None, **kwargs: Any) -> Any:
        lo, hi = self.space.bounds()
        X = np.clip(np.round(np.asarray(X, dtype=float)), lo, hi).astype(int)
        n = self.space.arch.num_layers
        for row in X:
            kept = int(row[0::3].sum())
            if kept < self.space.min_layers:
                off = [i for i in range(n) if row[3 * i] == 0]
                need = self.space.min_layers - kept
                pick = (random_state.choice(off, need, replace=False) if random_state is not None
                        else off[:need])
                for i in pick:
                    row[3 * int(i)] = 1
            row[:] = self.space.canonical(row)
        return X


class SearchProblem(Problem):
    def __init__(self, space: SearchSpace, norm: Normaliser, constraints: Constraints,
                 values_fn: ValuesFn) -> None:
        lo, hi = space.bounds()
        super().__init__(n_var=space.n_var, n_obj=len(norm.objectives),
                         n_ieq_constr=len(constraints.active()), xl=lo, xu=hi, vtype=int)
        self.space, self.norm, self.constraints, self.values_fn = (space, norm, constraints,
                                                                   values_fn)

    def _evaluate(self, X: Any, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        specs = [self.space.decode(np.round(x).astype(int)) for x in np.atleast_2d(X)]
        values = self.values_fn(specs)
        out["F"] = self.norm.matrix(values)
        if self.n_ieq_constr:
            out["G"] = np.array([self.constraints.violation(v) for v in values])


# ---- algorithms by name ------------------------------------------------------------------
def _operators(space: SearchSpace, sampling: Any) -> dict[str, Any]:
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    return {"sampling": IntegerRandomSampling() if sampling is None else sampling,
            "crossover": SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            "mutation": PM(eta=20, vtype=float, repair=RoundingRepair()),
            "repair": SubnetRepair(space), "eliminate_duplicates": True}


def _nsga2(space: SearchSpace, pop: int, n_obj: int, sampling: Any) -> Any:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    return NSGA2(pop_size=pop, **_operators(space, sampling))


def _agemoea(space: SearchSpace, pop: int, n_obj: int, sampling: Any) -> Any:
    try:
        import numba  # noqa: F401  (pymoo's AGE-MOEA needs it and raises a bare Exception)
    except ImportError:
        raise MissingDependencyError("numba", "the search algorithm 'agemoea'",
                                     "pip install numba") from None
    from pymoo.algorithms.moo.age import AGEMOEA
    return AGEMOEA(pop_size=pop, **_operators(space, sampling))


def _ref_dirs(n_obj: int, pop: int) -> Any:
    from pymoo.util.ref_dirs import get_reference_directions
    parts = 1
    while True:  # the most partitions whose directions fit in the population
        d = get_reference_directions("das-dennis", n_obj, n_partitions=parts + 1)
        if len(d) > pop:
            return get_reference_directions("das-dennis", n_obj, n_partitions=parts)
        parts += 1


def _unsga3(space: SearchSpace, pop: int, n_obj: int, sampling: Any) -> Any:
    from pymoo.algorithms.moo.unsga3 import UNSGA3
    return UNSGA3(_ref_dirs(n_obj, pop), pop_size=pop, **_operators(space, sampling))


def _nsga3(space: SearchSpace, pop: int, n_obj: int, sampling: Any) -> Any:
    from pymoo.algorithms.moo.nsga3 import NSGA3
    return NSGA3(_ref_dirs(n_obj, pop), pop_size=pop, **_operators(space, sampling))


def _smsemoa(space: SearchSpace, pop: int, n_obj: int, sampling: Any) -> Any:
    from pymoo.algorithms.moo.sms import SMSEMOA
    return SMSEMOA(pop_size=pop, **_operators(space, sampling))


ALGORITHMS: Registry[Callable[..., Any]] = Registry("search algorithm")
for _name, _fn in (("nsga2", _nsga2), ("agemoea", _agemoea), ("unsga3", _unsga3),
                   ("nsga3", _nsga3), ("smsemoa", _smsemoa)):
    ALGORITHMS.register(_name, _fn)


def make_algorithm(name: str, space: SearchSpace, pop: int, n_obj: int,
                   sampling: Any = None) -> Any:
    try:
        factory = ALGORITHMS.get(name)
    except NotFoundError as e:
        raise InputError(f"--algorithm: {e}") from None
    return factory(space, pop, n_obj, sampling)


# ---- sampling and fronts -----------------------------------------------------------------
def initial_population(space: SearchSpace, rng: np.random.Generator, n: int,
                       exclude: set[str]) -> list[SubnetSpec]:
    """`n` distinct subnets spread over compression levels (stratified, denser near the full
    model where an un-fine-tuned supernet keeps its accuracy)."""
    out: list[SubnetSpec] = []
    seen = set(exclude)
    i = 0
    while len(out) < n:
        c = ((i % n + rng.random()) / n) ** 1.5
        s = space.sample_graded(rng, c)
        i += 1
        if s.key() not in seen:
            seen.add(s.key())
            out.append(s)
    return out


def non_dominated(F: np.ndarray) -> list[int]:
    if len(F) == 0:
        return []
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    return sorted(int(i) for i in NonDominatedSorting().do(F, only_non_dominated_front=True))


def hypervolume(F: np.ndarray, ref_point: np.ndarray) -> float:
    from pymoo.indicators.hv import HV

    if len(F) == 0:
        return 0.0
    inside = F[(F < ref_point).all(axis=1)]
    return float(HV(ref_point=ref_point)(inside)) if len(inside) else 0.0
