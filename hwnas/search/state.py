"""A run's state, rebuilt from its append-only events in the store.

Event kinds (payloads are plain JSON):

- ``start``: the config, the evaluator, the search space
- ``reference``: the full model's values (the normalisation and the hypervolume's fixed
  reference point derive from them)
- ``batch``: an iteration's planned subnets, the RNG state that drew them, the predictors'
  versions and their predictions
- ``eval``: one real evaluation (iteration, subnet, measured values)
- ``failed``: a real evaluation that raised (e.g. out of memory) or whose worker kept dying:
  the subnet, the reason; it counts against the budget and is infeasible
- ``iteration``: the end of an iteration (evaluations used, front size, hypervolume)
- ``predicted``, ``final_reference``, ``final``: the re-measurement of the Pareto set
- ``done``: the run finished
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Required, TypedDict, cast

from hwnas.search.evaluators import Description, Measured
from hwnas.store import Record, Storage
from hwnas.supernet.space import SubnetSpec


class StartEvent(TypedDict):
    config: Record  # SearchConfig.to_dict()
    evaluator: Description
    space: dict[str, int | list[int]]  # SearchSpace.to_dict()


class PredictedValues(TypedDict, total=False):
    """What the predictors said of one subnet: per measured key, mean and spread."""

    mean: Required[dict[str, float]]
    sd: Required[dict[str, float]]
    key: str  # in a batch event
    source: str  # in a predicted event: "before evaluation" | "fit including this subnet"
    latency_source: str  # set when the latency comes from the profile's predictor


class BatchEvent(TypedDict, total=False):
    iteration: Required[int]
    specs: Required[list[dict[str, list[int]]]]  # SubnetSpec.to_dict() of each
    rng_state: Required[dict[str, Any]]  # numpy's bit-generator state, as numpy writes it
    kind: Required[str]  # "initial" | a strategy's kind
    predictors: dict[str, str]  # LINAS: the predictors' versions
    n_candidates: int
    generations: int  # NSGA-II: generations asked for this batch
    predicted: list[PredictedValues]


class IterationEvent(TypedDict):
    iteration: int
    evals_used: int
    front_size: int
    hypervolume: float
    front: list[str]  # subnet keys


class PredictedItem(TypedDict):
    key: str
    spec: dict[str, list[int]]
    predicted: PredictedValues


class PredictedEvent(TypedDict):
    items: list[PredictedItem]


class DoneEvent(TypedDict):
    evals_used: int
    iterations: int


@dataclass
class EvalRecord:
    spec: SubnetSpec
    measured: Measured
    iteration: int


@dataclass
class FailedRecord:
    spec: SubnetSpec
    reason: str
    iteration: int


@dataclass
class RunState:
    start: StartEvent | None = None
    reference: Measured | None = None
    evals: dict[str, EvalRecord] = field(default_factory=dict)  # insertion = eval order
    failed: dict[str, FailedRecord] = field(default_factory=dict)
    batches: dict[int, BatchEvent] = field(default_factory=dict)
    iterations: dict[int, IterationEvent] = field(default_factory=dict)
    predicted: PredictedEvent | None = None
    final_reference: Measured | None = None
    finals: dict[str, Measured] = field(default_factory=dict)
    done: DoneEvent | None = None

    @property
    def used(self) -> int:
        return len(self.evals) + len(self.failed)

    def tried(self) -> set[str]:
        """Keys of every subnet evaluated for real, failed ones included."""
        return set(self.evals) | set(self.failed)

    def iterations_tried(self) -> list[int]:
        return [e.iteration for e in self.evals.values()] + \
            [f.iteration for f in self.failed.values()]

    def apply(self, kind: str, p: Record) -> None:
        """Take in one event (the payloads are what the runner recorded: see the event
        types above)."""
        if kind == "start":
            self.start = cast(StartEvent, p)
        elif kind == "reference":
            self.reference = Measured.from_dict(p["measured"])
        elif kind == "eval":
            spec = SubnetSpec.from_dict(p["spec"], "run event")
            self.evals.setdefault(spec.key(), EvalRecord(spec, Measured.from_dict(p["measured"]),
                                                         int(p["iteration"])))
        elif kind == "failed":
            spec = SubnetSpec.from_dict(p["spec"], "run event")
            self.failed.setdefault(spec.key(), FailedRecord(spec, str(p["reason"]),
                                                            int(p["iteration"])))
        elif kind == "batch":
            self.batches[int(p["iteration"])] = cast(BatchEvent, p)
        elif kind == "iteration":
            self.iterations[int(p["iteration"])] = cast(IterationEvent, p)
        elif kind == "predicted":
            self.predicted = cast(PredictedEvent, p)
        elif kind == "final_reference":
            self.final_reference = Measured.from_dict(p["measured"])
        elif kind == "final":
            self.finals[p["key"]] = Measured.from_dict(p["measured"])
        elif kind == "done":
            self.done = cast(DoneEvent, p)

    @classmethod
    def load(cls, store: Storage, run: str) -> RunState:
        st = cls()
        for _, kind, payload in store.events(run):
            st.apply(kind, payload)
        return st
