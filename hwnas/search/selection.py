"""Choose the next batch of real evaluations from the candidates of a predictor search:
non-dominated by (optimistic) prediction, diverse, favouring uncertain candidates, and never
a subnet already evaluated."""

from __future__ import annotations

import numpy as np


def fronts(F: np.ndarray) -> list[list[int]]:
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    if len(F) == 0:
        return []
    return [sorted(int(i) for i in f) for f in NonDominatedSorting().do(F)]


def choose_batch(mean: np.ndarray, sd: np.ndarray, violation: np.ndarray, k: int,
                 anchors: np.ndarray, ref_point: np.ndarray, beta: float = 1.0) -> list[int]:
    """Indices of at most `k` candidates.

    mean, sd: (n, m) normalised, minimised objectives and their predicted spread; violation:
    (n,) summed predicted constraint violation (0 when feasible); anchors: (a, m) the real
    front so far; ref_point: the hypervolume's reference point.

    Greedy hypervolume improvement of the optimistic estimate (mean - beta*sd, so uncertain
    candidates get their chance): each pick is the feasible candidate whose optimistic point
    adds the most hypervolume to the real front plus the picks so far (at their predicted
    means, so the next pick goes elsewhere: diversity). When no candidate improves the front
    any more, the rest come from non-dominated sorting of the optimistic estimate, farthest
    first from what is already placed, ties to the more uncertain.
    """
    from hwnas.search.problem import hypervolume

    n = len(mean)
    if n == 0 or k <= 0:
        return []
    optimistic = mean - beta * sd
    uncertainty = sd.sum(axis=1)
    placed = [a for a in np.atleast_2d(anchors)] if len(anchors) else []
    chosen: list[int] = []
    pool = [int(i) for i in np.flatnonzero(violation <= 0)]
    while pool and len(chosen) < k:
        base_F = np.vstack(placed) if placed else np.zeros((0, mean.shape[1]))
        base = hypervolume(base_F, ref_point)
        gain = {i: hypervolume(np.vstack([base_F, optimistic[i]]), ref_point) - base
                for i in pool}
        best = max(pool, key=lambda i: (round(gain[i], 12), uncertainty[i], -i))
        if gain[best] <= 1e-12:
            break
        chosen.append(best)
        placed.append(mean[best])
        pool.remove(best)
    if len(chosen) < k:
        chosen += _by_rank(mean, optimistic, uncertainty, violation, k - len(chosen),
                           placed, set(chosen))
    return chosen


def _by_rank(mean: np.ndarray, optimistic: np.ndarray, uncertainty: np.ndarray,
             violation: np.ndarray, k: int, placed: list[np.ndarray],
             taken: set[int]) -> list[int]:
    feasible = np.array([i for i in np.flatnonzero(violation <= 0) if i not in taken], dtype=int)
    infeasible = [int(i) for i in np.argsort(violation, kind="stable")
                  if violation[i] > 0 and i not in taken]
    order = [[int(feasible[i]) for i in f] for f in fronts(optimistic[feasible])]
    if infeasible:
        order.append(infeasible)
    chosen: list[int] = []
    for front in order:
        pool = list(front)
        while pool and len(chosen) < k:
            if not placed:
                best = max(pool, key=lambda i: (uncertainty[i], -i))
            else:
                P = np.vstack(placed)
                dist = {i: float(np.min(np.linalg.norm(P - mean[i], axis=1))) for i in pool}
                best = max(pool, key=lambda i: (round(dist[i], 9), uncertainty[i], -i))
            chosen.append(best)
            placed.append(mean[best])
            pool.remove(best)
        if len(chosen) >= k:
            break
    return chosen


def spread_pick(F: np.ndarray, k: int) -> list[int]:
    """At most `k` diverse rows of a front: the extremes of each objective first, then the
    row farthest from those already picked."""
    n = len(F)
    if n <= k:
        return list(range(n))
    picked: list[int] = []
    for j in range(F.shape[1]):
        i = int(np.argmin(F[:, j]))
        if i not in picked and len(picked) < k:
            picked.append(i)
    while len(picked) < k:
        rest = [i for i in range(n) if i not in picked]
        d = {i: float(np.min(np.linalg.norm(F[picked] - F[i], axis=1))) for i in rest}
        picked.append(max(rest, key=lambda i: (round(d[i], 9), -i)))
    return sorted(picked)
