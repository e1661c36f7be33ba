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
    optimistic = mean - beta * sd
    return _greedy(mean, optimistic[None], sd.sum(axis=1), violation, k, anchors, ref_point,
                   optimistic)


def _greedy(mean: np.ndarray, samples: np.ndarray, uncertainty: np.ndarray,
            violation: np.ndarray, k: int, anchors: np.ndarray, ref_point: np.ndarray,
            rank_by: np.ndarray) -> list[int]:
    """Greedy batch: each pick is the predicted-feasible candidate whose `samples` (S, n, m)
    add the most hypervolume, on average, to the real front plus the picks so far (placed at
    their predicted means: fantasies), ties to the more uncertain; the rest, once nothing
    improves, by non-dominated rank of `rank_by`, farthest first."""
    n = len(mean)
    if n == 0 or k <= 0:
        return []
    m = mean.shape[1]
    placed = [a for a in np.atleast_2d(anchors)] if len(anchors) else []
    chosen: list[int] = []
    pool = [int(i) for i in np.flatnonzero(violation <= 0)]
    inside: np.ndarray = np.asarray((samples < ref_point).all(axis=2))  # (S, n): can add
    while pool and len(chosen) < k:
        base_F = np.vstack(placed) if placed else np.zeros((0, m))
        base = _hv(base_F, ref_point)
        gain = {}
        for i in pool:
            rows = samples[inside[:, i], i]
            if uncertainty[i] == 0:  # a known outcome: its samples are all the same row
                rows = rows[:1]
            gain[i] = float(np.mean([_hv(np.vstack([base_F, row]), ref_point) - base
                                     for row in rows] or [0.0]) * inside[:, i].mean())
        best = max(pool, key=lambda i: (round(gain[i], 12), float(uncertainty[i]), -i))
        if gain[best] <= 1e-12:
            break
        chosen.append(best)
        placed.append(mean[best])
        pool.remove(best)
    if len(chosen) < k:
        chosen += _by_rank(mean, rank_by, uncertainty, violation, k - len(chosen), placed,
                           set(chosen))
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


def hv2d(F: np.ndarray, ref: np.ndarray) -> float:
    """The exact hypervolume of two minimised objectives (a staircase sum)."""
    F = F[(F < ref).all(axis=1)]
    if not len(F):
        return 0.0
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    best = np.minimum.accumulate(F[:, 1])
    keep = np.r_[True, best[1:] < best[:-1]]
    P = F[keep]
    xs = np.r_[P[1:, 0], ref[0]]
    return float(np.sum((xs - P[:, 0]) * (ref[1] - P[:, 1])))


def _hv(F: np.ndarray, ref: np.ndarray) -> float:
    from hwnas.search.problem import hypervolume

    return hv2d(F, ref) if F.shape[1] == 2 else hypervolume(F, ref)


def choose_batch_ehvi(mean: np.ndarray, sd: np.ndarray, violation: np.ndarray, k: int,
                      anchors: np.ndarray, ref_point: np.ndarray, rng: np.random.Generator,
                      n_samples: int = 64) -> list[int]:
    """Indices of at most `k` candidates by Monte-Carlo expected hypervolume improvement.

    Each candidate's outcome is drawn `n_samples` times from its predictive distribution
    (independent normals in normalised units; a zero spread is a known value). A pick is the
    predicted-feasible candidate whose draws add the most hypervolume, on average, to the real
    front plus the picks so far; each pick then joins the front at its predicted mean (a
    fantasy), so the next one goes elsewhere. When nothing is expected to improve the front,
    the rest come as in `choose_batch` (non-dominated sorting, farthest first)."""
    draws = mean[None] + sd[None] * rng.standard_normal((n_samples, *mean.shape))
    return _greedy(mean, draws, sd.sum(axis=1), violation, k, anchors, ref_point, mean - sd)
