"""Which subnets train each step: the sandwich rule inside the band where users search.

Each step trains the full network, the band's smallest end (a subnet near the top of the
speed-up band) and `k` random subnets inside the band. With `sampler: influence` (the
default), layers are dropped in proportion to their inverse block influence on calibration
text: a subnet without the first or last layer is one no search keeps, and training on such
wrecks (KL 4-6 nats) pulled the shared weights away from the full path (its KL rose from 0
to 0.12 within 75 steps, where uniform drops were sampled). Speed-up is a proxy by default: the
full model's weight bytes read per token over the subnet's (`hwnas.supernet.stats`), which is
what bounds decode on a CPU; pass another cost function (a latency predictor) to override.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.errors import InputError
from hwnas.supernet.space import SearchSpace, SubnetSpec
from hwnas.supernet.stats import subnet_stats

CostFn = Callable[[SubnetSpec], float]
MAX_TRIES = 5000


def proxy_cost(space: SearchSpace) -> CostFn:
    def cost(spec: SubnetSpec) -> float:
        return subnet_stats(space.arch, spec).weight_bytes_per_token
    return cost


def influence_weights(influence: Sequence[float], power: float = 2.0) -> tuple[float, ...]:
    """Drop weights from block influence: (1 / influence)^power, so the layers that turn the
    residual stream least are dropped first and those that carry the model (the first layer,
    influence about 1 on SmolLM2-135M, against 0.02-0.05 in the middle) almost never."""
    return tuple(float(max(b, 1e-6)) ** -power for b in influence)


@dataclass
class BandSampler:
    space: SearchSpace
    band: tuple[float, float]
    cost: CostFn
    drop_weights: tuple[float, ...] | None = None  # None: every layer alike

    def __post_init__(self) -> None:
        self.full_cost = self.cost(self.space.full())

    def speedup(self, spec: SubnetSpec) -> float:
        return self.full_cost / self.cost(spec)

    def _draw(self, rng: np.random.Generator, lo: float, hi: float) -> SubnetSpec:
        for _ in range(MAX_TRIES):
            spec = self.space.sample_graded(rng, float(rng.random()), self.drop_weights)
            if lo <= self.speedup(spec) <= hi:
                return spec
        raise InputError(f"no subnet of this space has a proxy speed-up in [{lo:.2f}, "
                         f"{hi:.2f}] (after {MAX_TRIES} draws); widen --band")

    def random(self, rng: np.random.Generator) -> SubnetSpec:
        return self._draw(rng, *self.band)

    def smallest(self, rng: np.random.Generator) -> SubnetSpec:
        lo, hi = self.band
        return self._draw(rng, max(lo, hi - 0.15 * (hi - lo)), hi)

    def sandwich(self, rng: np.random.Generator, k: int) -> list[SubnetSpec | None]:
        """None stands for the full network."""
        return [None, self.smallest(rng), *[self.random(rng) for _ in range(k)]]
