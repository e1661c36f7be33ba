"""The end of a run: re-measure the Pareto set on the hardware (fresh timing, accuracy on more
items), beside the full model measured the same way, and keep what was predicted for each."""

from __future__ import annotations

from typing import Any, Protocol

from hwnas.progress import ProgressEvent
from hwnas.search.config import SearchConfig
from hwnas.search.evaluators import Evaluator
from hwnas.search.objectives import Objective
from hwnas.search.state import RunState
from hwnas.search.strategy import rng_for
from hwnas.search.surrogates import Surrogates
from hwnas.supernet.space import SearchSpace, SubnetSpec


class Runner(Protocol):
    """What the re-measurement needs of `hwnas.search.loop.Runner`."""

    state: RunState
    config: SearchConfig
    space: SearchSpace
    ev: Evaluator
    objectives: tuple[Objective, ...]

    @property
    def layer_order(self) -> tuple[int, ...] | None: ...

    def record(self, kind: str, payload: dict[str, Any]) -> None: ...
    def emit(self, stage: str, done: int = 0, total: int = 0, what: str = "",
             **info: object) -> None: ...
    def known(self) -> tuple[list[SubnetSpec], list[dict[str, float]]]: ...
    def pick_front(self) -> list[SubnetSpec]: ...


def _predictions(r: Runner, picks: list[SubnetSpec]) -> dict[str, Any]:
    """For each pick: what the predictors said before it was evaluated (from its batch), or
    else a fit on all the run's evaluations (which include it; marked as such)."""
    before: dict[str, dict[str, Any]] = {}
    for b in r.state.batches.values():
        for p in b.get("predicted", ()):
            before[p["key"]] = {"mean": p["mean"], "sd": p["sd"], "source": "before evaluation"}
    keys = [o.key for o in r.objectives]
    keys += [k for k in ("latency_ms", "params") if k not in keys]
    specs, values = r.known()
    fit = None
    if any(s.key() not in before for s in picks) or r.ev.latency_predictor() is not None:
        have = [k for k in keys if all(k in v for v in values)]
        fit = Surrogates(r.space, have, r.ev.exact, r.ev.latency_predictor(),
                         seed=int(rng_for(r.config.seed, 0, "final").integers(2 ** 31)),
                         layer_order=r.layer_order)
        fit.fit(specs, values)
    out = {}
    for s in picks:
        row = dict(before.get(s.key()) or {})
        if fit is not None:
            mean, sd = fit.predict([s])
            if not row:
                row = {"mean": mean[0], "sd": sd[0], "source": "fit including this subnet"}
            if r.ev.latency_predictor() is not None:  # the profile's predictor, calibrated
                row["mean"] = {**row["mean"], "latency_ms": mean[0]["latency_ms"]}
                row["sd"] = {**row["sd"], "latency_ms": sd[0]["latency_ms"]}
                row["latency_source"] = "layer-composed predictor, calibrated on the run"
        out[s.key()] = row
    return out


def remeasure_front(r: Runner) -> None:
    if r.state.predicted is None:
        picks = r.pick_front()
        preds = _predictions(r, picks)
        r.record("predicted", {"items": [{"key": s.key(), "spec": s.to_dict(),
                                          "predicted": preds[s.key()]} for s in picks]})
    assert r.state.predicted is not None
    items = r.state.predicted["items"]
    if not items:  # --final-max 0: the search alone (benchmarks)
        return
    if r.state.final_reference is not None and all(i["key"] in r.state.finals for i in items):
        return
    # all at once: the timing of the full model and of every pick is interleaved (fair ratios)
    specs: list[SubnetSpec | None] = [None]
    specs += [SubnetSpec.from_dict(i["spec"], "run event") for i in items]

    def step(ev: ProgressEvent) -> None:
        r.emit("remeasure", ev.done, ev.total, ev.what)

    measured = r.ev.remeasure(specs, step)
    if r.state.final_reference is None:
        r.record("final_reference", {"measured": measured[0].to_dict()})
    for item, m in zip(items, measured[1:], strict=True):
        if item["key"] not in r.state.finals:
            r.record("final", {"key": item["key"], "measured": m.to_dict()})
