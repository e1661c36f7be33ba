"""Read runs back out of the store: the run JSON (`summary`), the list of runs, the
hypervolume after every real evaluation, and `pick` (the K-th subnet of a run's Pareto
set, for `hwnas export --run RUN --pick K`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.search.config import SearchConfig
from hwnas.search.objectives import objectives
from hwnas.search.problem import Normaliser, hypervolume, non_dominated
from hwnas.search.state import RunState
from hwnas.supernet.space import SubnetSpec

SHOWN = ("latency_ms", "accuracy", "perplexity", "params", "memory_bytes")


def _load(store: Any, run: str) -> tuple[SearchConfig, RunState]:
    cfg = store.run_config(run)
    if cfg is None:
        names = store.run_names()
        hint = f"; runs: {', '.join(names[-10:])}" if names else "; no runs yet (hwnas search)"
        raise InputError(f"no run named '{run}' in the store {store.path}{hint}")
    return SearchConfig.from_dict(cfg), RunState.load(store, run)


def _pick(values: dict[str, float]) -> dict[str, float]:
    return {k: values[k] for k in SHOWN if k in values}


def pareto(state: RunState) -> list[dict[str, Any]]:
    """The re-measured Pareto set, ordered by measured latency (fastest first) when known."""
    if state.predicted is None:
        return []
    out = []
    for item in state.predicted["items"]:
        rec = state.evals.get(item["key"])
        fin = state.finals.get(item["key"])
        out.append({"key": item["key"], "subnet": item["spec"],
                    "predicted": item["predicted"],
                    "search": _pick(rec.measured.values) if rec else {},
                    "measured": _pick(fin.values) if fin else None,
                    "measured_detail": fin.detail if fin else None})
    out.sort(key=lambda p: (p["measured"] or p["search"]).get("latency_ms", 0.0))
    return out


def agreement(items: list[dict[str, Any]], key: str = "latency_ms",
              tol: float = 0.10) -> dict[str, Any]:
    """Share of the front whose re-measured value lies within ±tol of its prediction."""
    pairs = [(p["predicted"]["mean"][key], p["measured"][key]) for p in items
             if p.get("measured") and key in p["predicted"].get("mean", {})]
    if not pairs:
        return {"n": 0, "share": None, "tolerance": tol}
    rel = [m / q - 1.0 for q, m in pairs]
    return {"n": len(pairs), "share": float(np.mean([abs(x) <= tol for x in rel])),
            "tolerance": tol, "relative_errors": [round(x, 4) for x in rel]}


def hv_curve(state: RunState, config: SearchConfig) -> list[tuple[int, float]]:
    """Hypervolume of the really-evaluated feasible front after each real evaluation."""
    if state.reference is None:
        return []
    norm = Normaliser(tuple(objectives(config.objectives)), dict(state.reference.values))
    rows: list[np.ndarray] = []
    out = []
    for i, rec in enumerate(state.evals.values(), start=1):
        if config.constraints.feasible(rec.measured.values):
            rows.append(norm.row(rec.measured.values))
        F = np.vstack(rows) if rows else np.zeros((0, len(norm.objectives)))
        out.append((i, hypervolume(F[non_dominated(F)] if len(F) else F, norm.ref_point())))
    return out


def summary(store: Any, run: str) -> dict[str, Any]:
    cfg, st = _load(store, run)
    items = pareto(st)
    its = [st.iterations[i] for i in sorted(st.iterations)]
    norm = None
    if st.reference is not None:
        norm = Normaliser(tuple(objectives(cfg.objectives)), dict(st.reference.values))
    status = "done" if st.done else ("remeasuring" if st.predicted else "searching")
    return {
        "name": run, "hw": cfg.hw, "model": cfg.model, "tasks": list(cfg.tasks),
        "objectives": list(cfg.objectives), "strategy": cfg.strategy, "status": status,
        "evals_used": st.used, "evals": cfg.evals, "config": cfg.to_dict(),
        "failed": [{"key": k, "reason": f.reason, "iteration": f.iteration}
                   for k, f in st.failed.items()],
        "hypervolume": [it["hypervolume"] for it in its],
        "hypervolume_evals": [it["evals_used"] for it in its],
        "normalisation": norm.to_dict() if norm else None,
        "reference": {"search": _pick(st.reference.values) if st.reference else None,
                      "measured": _pick(st.final_reference.values) if st.final_reference
                      else None,
                      "measured_detail": st.final_reference.detail if st.final_reference
                      else None},
        "pareto": items,
        "agreement": {"latency_ms": agreement(items)},
        "evaluator": (st.start or {}).get("evaluator"),
    }


def list_runs(store: Any) -> list[dict[str, Any]]:
    out = []
    for name in store.run_names():
        cfg, st = _load(store, name)
        its = [st.iterations[i] for i in sorted(st.iterations)]
        out.append({"name": name, "hw": cfg.hw, "model": cfg.model, "strategy": cfg.strategy,
                    "objectives": list(cfg.objectives), "tasks": list(cfg.tasks),
                    "evals_used": st.used, "evals": cfg.evals,
                    "hypervolume": its[-1]["hypervolume"] if its else None,
                    "front_size": its[-1]["front_size"] if its else None,
                    "status": "done" if st.done else "unfinished"})
    return out


def pick(store: Any, run: str, k: int) -> tuple[str, SubnetSpec]:
    """The model name and the K-th subnet (1-based, as `hwnas runs show` numbers them) of a
    run's re-measured Pareto set."""
    cfg, st = _load(store, run)
    items = pareto(st)
    if not items:
        raise InputError(f"run '{run}' has no Pareto set yet (status: unfinished); finish it "
                         f"with `hwnas search ... --run {run} --resume`")
    if not 1 <= k <= len(items):
        raise InputError(f"--pick {k}: run '{run}' has {len(items)} Pareto subnets; choose "
                         f"1..{len(items)} (see `hwnas runs show {run}`)")
    return cfg.model, SubnetSpec.from_dict(items[k - 1]["subnet"], f"run {run}")
