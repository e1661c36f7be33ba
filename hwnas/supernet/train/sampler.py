"""Which subnets train each step: the sandwich rule inside the band where users search.

Each step trains the full network, the band's smallest end (a subnet near the top of the
speed-up band) and `k` random subnets inside the band. With `sampler: influence` (the
default), layers are dropped in proportion to their inverse block influence on calibration
text: a subnet without the first or last layer is one no search keeps, and training on such
wrecks (KL 4-6 nats) pulled the shared weights away from the full path (its KL rose from 0
to 0.12 within 75 steps, where uniform drops were sampled). Speed-up is a proxy by default: the
full model's weight bytes read per token over the subnet's (`hwnas.supernet.stats`), which is
what bounds decode on a CPU; pass another cost function (a latency predictor) to override.

With `sampler: ranked`, depth is nested the way widths are: a subnet that drops k layers drops
the k of least block influence (ShortGPT's order), and widths and KV groups move down only
lightly. Training is then spent on few, shared structures rather than spread over every
combination of drops: on this project's CPU, depth carried the speed-up at the least cost
(at 1.33-1.35x faster, ShortGPT's 20 layers scored 42.9 against 39.0 for uniform MLP width
640, both on trained weights), and a 90-minute CPU budget cannot train the whole space.
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


def ranked_subnet(space: SearchSpace, rng: np.random.Generator, level: float,
                  order: Sequence[int], width_scale: float = 0.1) -> SubnetSpec:
    """A subnet at compression `level` in [0, 1] whose depth is nested: Binomial(layers,
    level/2) layers go, first in `order`; each kept layer's width and KV groups move down by
    Binomial(choices - 1, level * width_scale), so most stay full."""
    n = space.arch.num_layers
    k = min(int(rng.binomial(n, 0.5 * level)), n - space.min_layers)
    dropped = {int(i) for i in order[:k]}
    layers = tuple(i for i in range(n) if i not in dropped)
    return space.graded_subnet(rng, layers, min(1.0, max(0.0, level * width_scale)))


@dataclass
class BandSampler:
    space: SearchSpace
    band: tuple[float, float]
    cost: CostFn
    drop_weights: tuple[float, ...] | None = None  # None: every layer alike
    drop_order: tuple[int, ...] | None = None  # set: nested depth in this order (ranked)

    def __post_init__(self) -> None:
        self.full_cost = self.cost(self.space.full())

    def speedup(self, spec: SubnetSpec) -> float:
        return self.full_cost / self.cost(spec)

    def _draw(self, rng: np.random.Generator, lo: float, hi: float) -> SubnetSpec:
        for _ in range(MAX_TRIES):
            level = float(rng.random())
            spec = (self.space.sample_graded(rng, level, self.drop_weights)
                    if self.drop_order is None else
                    ranked_subnet(self.space, rng, level, self.drop_order))
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

    def plan(self, rng: np.random.Generator, rule: str, step: int, k: int
             ) -> list[tuple[str, SubnetSpec | None]]:
        """What step `step` trains, each with its role (full, smallest, random): the sandwich
        every step, or LLaMA-NAS's alternation (the full network, then one random subnet)."""
        if rule == "alternate":
            return [("full", None)] if step % 2 == 0 else [("random", self.random(rng))]
        specs = self.sandwich(rng, k)
        return [("full", None), ("smallest", specs[1]), *[("random", s) for s in specs[2:]]]
