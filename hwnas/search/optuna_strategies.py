"""Optuna's multi-objective samplers as external references (`--strategy optuna-tpe`,
`optuna-gp`; the optional extra `hwnas[optuna]`).

Like `nsga2`, a strategy keeps no state: each call builds an in-memory study from the run's
real evaluations (the genes of `SearchSpace.encode` as integer parameters, the normalised
minimised objectives as values, a constraint violation added to every value as a penalty),
seeds the sampler from the iteration's generator and asks for the batch. A proposal that is
already known is told its known values; one repeated within the batch is told as failed;
fresh ones stay pending (TPE's constant liar spreads them)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.search.strategy import Proposal, View
from hwnas.supernet.space import SubnetSpec

PENALTY = 10.0  # per unit of summed constraint violation, in normalised objective units
MAX_ASKS = 20  # per wanted proposal


def _optuna(kind: str) -> Any:
    try:
        import optuna
    except ImportError:
        raise InputError(f"--strategy {kind}: needs optuna, an optional extra; install it "
                         "with `.venv/bin/pip install 'optuna>=4.2'` (or `pip install "
                         "-e .[optuna]`), or choose another --strategy") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class OptunaStrategy:
    kind = "optuna"

    def __init__(self) -> None:
        self.optuna = _optuna(self.kind)

    def sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def _values(self, view: View, values: dict[str, float]) -> list[float]:
        penalty = PENALTY * sum(max(0.0, g) for g in view.config.constraints.violation(values))
        return [float(v) + penalty for v in view.norm.row(values)]

    def propose(self, view: View, rng: np.random.Generator, k: int) -> Proposal:
        with warnings.catch_warnings():  # multivariate TPE and GPSampler are "experimental"
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            return self._propose(view, rng, k)

    def _propose(self, view: View, rng: np.random.Generator, k: int) -> Proposal:
        optuna = self.optuna
        space = view.space
        lo, hi = space.bounds()
        dists = {f"g{i}": optuna.distributions.IntDistribution(int(lo[i]), int(hi[i]))
                 for i in range(space.n_var)}
        seed = int(rng.integers(2 ** 31))
        study = optuna.create_study(directions=["minimize"] * len(view.objectives),
                                    sampler=self.sampler(seed))
        known: dict[str, dict[str, float]] = {}
        for spec, values in zip(view.specs, view.values, strict=True):
            known[spec.key()] = values
            x = space.encode(spec)
            study.add_trial(optuna.trial.create_trial(
                params={f"g{i}": int(v) for i, v in enumerate(x)}, distributions=dists,
                values=self._values(view, values)))
        out: dict[str, SubnetSpec] = {}
        asks = 0
        while len(out) < k and asks < MAX_ASKS * k:
            asks += 1
            trial = study.ask(dists)
            x = np.array([trial.params[f"g{i}"] for i in range(space.n_var)], dtype=int)
            if x[0::3].sum() < space.min_layers:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            spec = space.decode(space.canonical(x))
            key = spec.key()
            if key in known:
                study.tell(trial, self._values(view, known[key]))
            elif key in out or key in view.tried:  # repeated, or a failed evaluation
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                out[key] = spec
        return list(out.values()), {"kind": self.kind, "asks": asks}


class OptunaTPE(OptunaStrategy):
    """Optuna's TPESampler (multivariate, constant liar for the pending batch)."""

    kind = "optuna-tpe"

    def sampler(self, seed: int) -> Any:
        return self.optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                               constant_liar=True)


class OptunaGP(OptunaStrategy):
    """Optuna's GPSampler (Gaussian-process Bayesian optimisation)."""

    kind = "optuna-gp"

    def sampler(self, seed: int) -> Any:
        return self.optuna.samplers.GPSampler(seed=seed)
