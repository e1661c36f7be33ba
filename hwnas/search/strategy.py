"""The search as Sampler + Study: a `Strategy` proposes subnets from what a run knows (a
`View`, read-only), and the one loop (`hwnas.search.loop.Runner`) records, evaluates and
resumes. Strategies are found by name in `STRATEGIES`.

A strategy keeps no state between calls that is not in the view: `propose` is a pure function
of the view, the iteration's generator and `k`, so a resumed run (which reuses recorded
batches and re-derives everything else) ends as an uninterrupted one does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hwnas.registry import Registry
from hwnas.search.config import SearchConfig
from hwnas.search.objectives import Objective
from hwnas.search.problem import Normaliser
from hwnas.search.state import BatchEvent
from hwnas.supernet.space import SearchSpace, SubnetSpec

PURPOSE = {"plan": 1, "inner": 2, "final": 3}


def rng_for(seed: int, iteration: int, purpose: str = "plan") -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, iteration, PURPOSE[purpose]]))


@dataclass(frozen=True)
class View:
    """What a strategy may read of a run: its settings, the space, the real evaluations so
    far (in evaluation order), the recorded batches, and the exact and predicted values the
    evaluator offers without a real evaluation."""

    config: SearchConfig
    space: SearchSpace
    objectives: tuple[Objective, ...]
    norm: Normaliser
    specs: tuple[SubnetSpec, ...]  # really evaluated (failed ones excluded)
    values: tuple[dict[str, float], ...]
    tried: frozenset[str]  # keys evaluated or failed
    batches: Mapping[int, BatchEvent]
    exact: Callable[[SubnetSpec], dict[str, float]]
    latency_predictor: Any  # the profile's composed predictor bundle, or None
    values_of: Callable[[SubnetSpec], dict[str, float]]  # measured, or a penalty if failed
    front: tuple[tuple[SubnetSpec, ...], np.ndarray]  # the feasible real front, normalised
    layer_order: tuple[int, ...] | None = None  # least influential layer first, when known

    def keys(self) -> list[str]:
        """Every measured key the objectives and the active constraints read."""
        keys = [o.key for o in self.objectives]
        return keys + [k for k, _, _ in self.config.constraints.active() if k not in keys]


Proposal = tuple[list[SubnetSpec], dict[str, Any]]


class Strategy(Protocol):
    def propose(self, view: View, rng: np.random.Generator, k: int) -> Proposal:
        """At most `k` subnets not tried yet (fewer, or none, when it has nothing new), and
        what to record with the batch (a JSON-able dict with at least ``kind``)."""
        ...


STRATEGIES: Registry[Callable[[], Strategy]] = Registry("search strategy")


def initial_design(space: SearchSpace, rng: np.random.Generator, n: int,
                   layer_order: Sequence[int] | None = None) -> list[SubnetSpec]:
    """The structured initial design every strategy starts from (identical for a seed):
    depth cuts, uniform MLP widths and uniform KV groups, interleaved, then graded random
    subnets spread from near-full to heavily compressed. Structured points take at most half
    of `n`.

    With `layer_order` (least influential first), the depth cuts drop the k first layers of
    it (ShortGPT's cut, and the subnets a `--sampler ranked` super-network was trained on),
    for k spread over 1..half the layers, coarse steps first; without it, single layers from
    the top down (late layers matter least in LLaMA-class models)."""
    from hwnas.search.problem import initial_population

    n_layers = space.arch.num_layers
    structured: list[SubnetSpec] = []
    widths = list(space.width_choices[:-1])[::-1]
    kvs = list(space.kv_choices[:-1])[::-1]
    most = max(0, n_layers - space.min_layers)
    if layer_order is not None:
        limit = min(most, max(1, n_layers // 2))
        step = max(1, limit // 5)
        ks = list(range(step, limit + 1, step))
        ks += [k for k in range(1, limit + 1) if k not in ks]
        drops = [list(layer_order[:k]) for k in ks]
    else:
        drops = [[n_layers - 2 - i] for i in range(most) if n_layers - 2 - i >= 0]
    # interleave the three kinds so a small n still gets some of each
    for i in range(max(len(widths), len(kvs), len(drops))):
        if i < len(drops):
            structured.append(space.uniform(drop=drops[i]))
        if i < len(widths):
            structured.append(space.uniform(width=widths[i]))
        if i < len(kvs):
            structured.append(space.uniform(kv_heads=kvs[i]))
    out: dict[str, SubnetSpec] = {}
    for s in structured[:n // 2]:
        out.setdefault(s.key(), s)
    out.update((s.key(), s) for s in initial_population(space, rng, n - len(out), set(out)))
    return list(out.values())


def ranked_steps(space: SearchSpace, parents: Sequence[SubnetSpec], order: Sequence[int],
                 exclude: set[str]) -> list[SubnetSpec]:
    """Greedy pruning paths through the real front: each parent with its least influential
    kept layer dropped, and with its most influential dropped layer restored (full width,
    every KV group); the rest of the parent is unchanged."""
    out: dict[str, SubnetSpec] = {}
    full_w, full_kv = space.width_choices[-1], space.kv_choices[-1]
    for p in parents:
        keep = dict(zip(p.layers, zip(p.intermediate_size, p.kv_heads, strict=True),
                        strict=True))
        dropped = [i for i in order if i not in keep]
        steps = []
        if len(keep) > space.min_layers:
            steps.append({i: v for i, v in keep.items() if i != next(
                i for i in order if i in keep)})
        if dropped:
            steps.append({**keep, dropped[-1]: (full_w, full_kv)})
        for layers in steps:
            idx = sorted(layers)
            s = SubnetSpec(tuple(idx), tuple(layers[i][0] for i in idx),
                           tuple(layers[i][1] for i in idx))
            if s.key() not in exclude:
                out.setdefault(s.key(), s)
    return list(out.values())


def ranked_family(space: SearchSpace, order: Sequence[int], exclude: set[str]) -> list[SubnetSpec]:
    """The structured subnets along the depth path of `order` (least influential first):
    the k first layers of it dropped (ShortGPT's cut, k = 0 .. all but `min_layers`), each
    with every uniform MLP width and every uniform KV-group count. The compressed end of a
    front is mostly of this shape (the 10-seed perplexity benchmark's pooled front: the
    least influential layers dropped, the rest narrowed), and a surrogate ranks a few hundred
    of them at no real cost."""
    out: dict[str, SubnetSpec] = {}
    most = space.arch.num_layers - space.min_layers
    for k in range(most + 1):
        for w in space.width_choices:
            for kv in space.kv_choices:
                s = space.uniform(width=w, kv_heads=kv, drop=order[:k])
                if s.key() not in exclude:
                    out.setdefault(s.key(), s)
    return list(out.values())


def mutations(space: SearchSpace, parents: Sequence[SubnetSpec], rng: np.random.Generator,
              n: int, exclude: set[str], genes: Sequence[int] = (1, 2)) -> list[SubnetSpec]:
    """Up to `n` distinct neighbours of `parents`: one or two genes of a parent moved to a
    neighbouring choice (a layer dropped or restored, a width or KV step up or down)."""
    if not parents:
        return []
    lo, hi = space.bounds()
    out: dict[str, SubnetSpec] = {}
    for _ in range(20 * n):
        if len(out) >= n:
            break
        x = space.encode(parents[int(rng.integers(len(parents)))]).copy()
        for g in rng.choice(space.n_var, size=int(rng.choice(list(genes))), replace=False):
            step = 1 if x[g] == lo[g] else -1 if x[g] == hi[g] else int(rng.choice([-1, 1]))
            x[g] += step
            if g % 3 and x[g - g % 3] == 0:  # a width/KV gene of a dropped layer: restore it
                x[g - g % 3] = 1
        if x[0::3].sum() < space.min_layers:
            continue
        s = space.decode(x)
        if s.key() not in exclude:
            out.setdefault(s.key(), s)
    return list(out.values())
