"""Read runs back out of the store: the run JSON (`summary`), the list of runs, the
hypervolume after every real evaluation, and `pick` (the K-th subnet of a run's Pareto
set, for `hwnas export --run RUN --pick K`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import numpy as np

from hwnas.errors import InputError
from hwnas.search.config import SearchConfig
from hwnas.search.evaluators import Description
from hwnas.search.objectives import objectives
from hwnas.search.problem import Normaliser, hypervolume, non_dominated
from hwnas.search.state import PredictedValues, RunState
from hwnas.store import Record, Storage
from hwnas.supernet.space import SubnetSpec

SHOWN = ("latency_ms", "accuracy", "perplexity", "params", "memory_bytes")


@dataclass(frozen=True)
class ParetoEntry:
    """One subnet of a run's re-measured Pareto set."""

    key: str
    subnet: SubnetSpec
    predicted: PredictedValues  # what the predictors said (see `final`)
    search: dict[str, float]  # its values during the search (empty if never evaluated)
    measured: dict[str, float] | None  # re-measured at the end (None: not yet)
    measured_detail: dict[str, Any] | None  # the evaluator's JSON detail of that

    def to_dict(self) -> Record:
        return {"key": self.key, "subnet": self.subnet.to_dict(),
                "predicted": dict(self.predicted), "search": dict(self.search),
                "measured": self.measured, "measured_detail": self.measured_detail}


@dataclass(frozen=True)
class Agreement:
    """Share of the front whose re-measured value lies within ±tolerance of its prediction
    (`share` None when nothing was both predicted and re-measured)."""

    n: int
    share: float | None
    tolerance: float
    relative_errors: tuple[float, ...] = ()

    def to_dict(self) -> Record:
        d: Record = {"n": self.n, "share": self.share, "tolerance": self.tolerance}
        if self.n:
            d["relative_errors"] = list(self.relative_errors)
        return d


@dataclass(frozen=True)
class FailedEntry:
    """A real evaluation that failed (recorded as infeasible, with its reason)."""

    key: str
    reason: str
    iteration: int


@dataclass(frozen=True)
class ReferenceValues:
    """The full model: its values during the search and re-measured beside the Pareto set."""

    search: dict[str, float] | None
    measured: dict[str, float] | None
    measured_detail: dict[str, Any] | None

    def best(self) -> dict[str, float]:
        """The re-measured values where there are any, else the search's (or nothing)."""
        return self.measured or self.search or {}


@dataclass(frozen=True)
class RunSummary:
    """What `hwnas runs show` reports of a run; `to_dict()` is its `--json` output."""

    name: str
    config: SearchConfig
    status: str  # "searching" | "remeasuring" | "done"
    evals_used: int
    hypervolume: list[float]  # after each iteration
    hypervolume_evals: list[int]  # real evaluations used by then
    normalisation: Normaliser | None
    reference: ReferenceValues
    pareto: list[ParetoEntry]  # fastest first (by measured latency where known)
    agreement: dict[str, Agreement]  # per measured key ("latency_ms")
    evaluator: Description | None
    failed: list[FailedEntry] = field(default_factory=list)  # real evaluations that failed
    plot: str | None = None  # the Pareto figure, once drawn

    @property
    def hw(self) -> str:
        return self.config.hw

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def tasks(self) -> list[str]:
        return list(self.config.tasks)

    @property
    def objectives(self) -> list[str]:
        return list(self.config.objectives)

    @property
    def strategy(self) -> str:
        return self.config.strategy

    @property
    def evals(self) -> int:
        return self.config.evals

    def to_dict(self) -> Record:
        ref = self.reference
        d: Record = {
            "name": self.name, "hw": self.hw, "model": self.model, "tasks": self.tasks,
            "objectives": self.objectives, "strategy": self.strategy, "status": self.status,
            "evals_used": self.evals_used, "evals": self.evals, "config": self.config.to_dict(),
            "failed": [asdict(f) for f in self.failed],
            "hypervolume": list(self.hypervolume),
            "hypervolume_evals": list(self.hypervolume_evals),
            "normalisation": self.normalisation.to_dict() if self.normalisation else None,
            "reference": {"search": ref.search, "measured": ref.measured,
                          "measured_detail": ref.measured_detail},
            "pareto": [p.to_dict() for p in self.pareto],
            "agreement": {k: a.to_dict() for k, a in self.agreement.items()},
            "evaluator": self.evaluator,
        }
        if self.plot is not None:
            d["plot"] = self.plot
        return d


class RunListing(TypedDict):
    """One row of `hwnas runs list`."""

    name: str
    hw: str
    model: str
    strategy: str
    objectives: list[str]
    tasks: list[str]
    evals_used: int
    evals: int
    hypervolume: float | None
    front_size: int | None
    status: str  # "done" | "unfinished"


def _load(store: Storage, run: str) -> tuple[SearchConfig, RunState]:
    cfg = store.run_config(run)
    if cfg is None:
        names = store.run_names()
        hint = f"; runs: {', '.join(names[-10:])}" if names else "; no runs yet (hwnas search)"
        raise InputError(f"no run named '{run}' in the store {store.path}{hint}")
    return SearchConfig.from_dict(cfg), RunState.load(store, run)


def _pick(values: dict[str, float]) -> dict[str, float]:
    return {k: values[k] for k in SHOWN if k in values}


def pareto(state: RunState) -> list[ParetoEntry]:
    """The re-measured Pareto set, ordered by measured latency (fastest first) when known."""
    if state.predicted is None:
        return []
    out = []
    for item in state.predicted["items"]:
        rec = state.evals.get(item["key"])
        fin = state.finals.get(item["key"])
        out.append(ParetoEntry(item["key"], SubnetSpec.from_dict(item["spec"], "run event"),
                               item["predicted"],
                               _pick(rec.measured.values) if rec else {},
                               _pick(fin.values) if fin else None,
                               fin.detail if fin else None))
    out.sort(key=lambda p: (p.measured or p.search).get("latency_ms", 0.0))
    return out


def agreement(items: list[ParetoEntry], key: str = "latency_ms",
              tol: float = 0.10) -> Agreement:
    """Share of the front whose re-measured value lies within ±tol of its prediction."""
    pairs = [(p.predicted["mean"][key], p.measured[key]) for p in items
             if p.measured and key in p.predicted.get("mean", {})]
    if not pairs:
        return Agreement(0, None, tol)
    rel = [m / q - 1.0 for q, m in pairs]
    return Agreement(len(pairs), float(np.mean([abs(x) <= tol for x in rel])), tol,
                     tuple(round(x, 4) for x in rel))


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


def summary(store: Storage, run: str) -> RunSummary:
    cfg, st = _load(store, run)
    items = pareto(st)
    its = [st.iterations[i] for i in sorted(st.iterations)]
    norm = None
    if st.reference is not None:
        norm = Normaliser(tuple(objectives(cfg.objectives)), dict(st.reference.values))
    status = "done" if st.done else ("remeasuring" if st.predicted else "searching")
    fin = st.final_reference
    ref = ReferenceValues(_pick(st.reference.values) if st.reference else None,
                          _pick(fin.values) if fin else None, fin.detail if fin else None)
    return RunSummary(
        name=run, config=cfg, status=status, evals_used=st.used,
        failed=[FailedEntry(k, f.reason, f.iteration) for k, f in st.failed.items()],
        hypervolume=[it["hypervolume"] for it in its],
        hypervolume_evals=[it["evals_used"] for it in its], normalisation=norm,
        reference=ref, pareto=items, agreement={"latency_ms": agreement(items)},
        evaluator=st.start.get("evaluator") if st.start else None)


def list_runs(store: Storage) -> list[RunListing]:
    out: list[RunListing] = []
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


def pick(store: Storage, run: str, k: int) -> tuple[str, SubnetSpec]:
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
    return cfg.model, items[k - 1].subnet
