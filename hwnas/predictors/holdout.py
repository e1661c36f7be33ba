"""Which whole subnets are held out, and which train the composition and whole-network models
(`hwnas.pipeline.measure` has them measured for real by the profilers).

Both sets are drawn by a seeded sampler that spreads over the space: each subnet draws its
own keep probability (0.3..1) and its own preference over width and KV choices, so held-out
subnets range from shallow and narrow to the full model. The held-out set is the first N of
the held-out sequence; the first `HOLDOUT_POOL` of that sequence are never used in training,
whoever measured them.
"""

from __future__ import annotations

import numpy as np

from hwnas.predictors.data import SubnetSample
from hwnas.supernet.space import SearchSpace, SubnetSpec

HOLDOUT_SEED = 20261129
TRAIN_SEED = 5
HOLDOUT_POOL = 500


def sample_across(space: SearchSpace, rng: np.random.Generator) -> SubnetSpec:
    n = space.arch.num_layers
    keep_prob = rng.uniform(0.3, 1.0)
    while True:
        keep = rng.random(n) < keep_prob
        if keep.sum() >= space.min_layers:
            break
    layers = tuple(int(i) for i in np.flatnonzero(keep))
    pw = rng.dirichlet(np.ones(len(space.width_choices)))
    pk = rng.dirichlet(np.ones(len(space.kv_choices)))
    widths = tuple(int(space.width_choices[j])
                   for j in rng.choice(len(space.width_choices), len(layers), p=pw))
    kvs = tuple(int(space.kv_choices[j])
                for j in rng.choice(len(space.kv_choices), len(layers), p=pk))
    return SubnetSpec(layers, widths, kvs)


def sample_graded(space: SearchSpace, rng: np.random.Generator) -> SubnetSpec:
    """A subnet at a random compression level c in [0, 1]: c = 0 is the full model; larger c
    drops more layers and picks narrower widths and fewer KV groups. Used to draw evaluated
    subnets whose accuracies span the full model down to chance."""
    return space.sample_graded(rng, rng.uniform(0.0, 1.0))


def _sequence(space: SearchSpace, seed: int, n: int) -> list[SubnetSpec]:
    rng = np.random.default_rng(seed)
    out: list[SubnetSpec] = []
    seen: set[str] = set()
    while len(out) < n:
        s = sample_across(space, rng)
        if s.key() not in seen:
            seen.add(s.key())
            out.append(s)
    return out


def holdout_specs(space: SearchSpace, n: int) -> list[SubnetSpec]:
    return _sequence(space, HOLDOUT_SEED, n)


def holdout_keys(space: SearchSpace) -> set[str]:
    return {s.key() for s in _sequence(space, HOLDOUT_SEED, HOLDOUT_POOL)}


def train_subnet_specs(space: SearchSpace, n: int) -> list[SubnetSpec]:
    banned = holdout_keys(space)
    out = [s for s in _sequence(space, TRAIN_SEED, n + 50) if s.key() not in banned]
    return out[:n]


def split_subnets(space: SearchSpace, samples: tuple[SubnetSample, ...],
                  n_holdout: int) -> tuple[list[SubnetSample], list[SubnetSample]]:
    """(training subnets, held-out subnets): held-out = the first `n_holdout` of the held-out
    sequence that are in the store; training = everything stored outside the held-out pool."""
    banned = holdout_keys(space)
    by_key = {s.spec.key(): s for s in samples}
    held = [by_key[s.key()] for s in holdout_specs(space, n_holdout) if s.key() in by_key]
    train = [s for s in samples if s.spec.key() not in banned]
    return train, held
