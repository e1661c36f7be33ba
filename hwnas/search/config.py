"""`SearchConfig`: everything that determines a run. Stored with the run; a resume must use
the same one (a mismatch is an error that names the differing fields)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hwnas.errors import InputError
from hwnas.search.objectives import CHOICE_QUALITY, Constraints, objectives

STRATEGIES = ("linas", "linas-v1", "nsga2", "random", "local", "optuna-tpe",
              "optuna-gp")  # = strategy.STRATEGIES
LATENCY_SOURCES = ("measured", "predicted", "none")  # none: quality and size only
DEFAULT_OBJECTIVES = ("perplexity", "latency")  # held-out perplexity ranks subnets best
# (benchmarks/results/quality-objective-2026-12-07.json); task accuracy is still re-measured
REPAIR_MODES = ("none", "ls")  # as `hwnas.supernet.repair.MODES` (not imported: no torch here)


@dataclass(frozen=True)
class SearchConfig:
    hw: str
    model: str
    tasks: tuple[str, ...]
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    constraints: Constraints = field(default_factory=Constraints)
    evals: int = 60  # real evaluations (the reference model is not counted)
    seed: int = 0
    strategy: str = "linas"
    algorithm: str = "nsga2"  # inner algorithm (linas) or the algorithm itself (nsga2)
    init: int = 0  # initial population; 0: max(8, evals // 5)
    batch: int = 0  # real evaluations per LINAS iteration; 0: max(4, evals // 10)
    inner_pop: int = 60
    inner_gens: int = 40
    limit: int | None = 100  # items per task for each real evaluation (None: all)
    final_limit: int | None = 1000  # items per task when re-evaluating the Pareto set
    final_max: int = 6  # Pareto candidates re-measured at the end (0: no re-measurement)
    latency: str = "measured"  # "measured" (profiler, per subnet) | "predicted" (composed)
    # | "none" (no latency at all: a search of quality against size needs no hardware profile)
    evaluator: str = "real"
    repair: str = "none"  # "none" | "ls": evaluate each subnet with its cut weights repaired

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "objectives", tuple(self.objectives))

    @property
    def n_init(self) -> int:
        return self.init or max(8, self.evals // 5)

    @property
    def n_batch(self) -> int:
        return self.batch or max(4, self.evals // 10)

    def check(self) -> None:
        objectives(self.objectives)
        self.constraints.check()
        if self.strategy not in STRATEGIES:
            raise InputError(f"--strategy {self.strategy!r}: choose one of "
                             f"{', '.join(STRATEGIES)}")
        if self.latency not in LATENCY_SOURCES:
            raise InputError(f"--latency {self.latency!r}: choose one of "
                             f"{', '.join(LATENCY_SOURCES)}")
        if self.latency == "none" and ("latency" in self.objectives
                                       or self.constraints.max_latency_ms is not None):
            raise InputError("--latency none: the latency objective and --max-latency-ms need "
                             "a latency; choose --latency measured or predicted, or drop them")
        if self.repair not in REPAIR_MODES:
            raise InputError(f"--repair {self.repair!r}: choose one of "
                             f"{', '.join(REPAIR_MODES)}")
        if self.evals < 1:
            raise InputError(f"--evals {self.evals}: give at least one real evaluation")
        if self.evals < self.n_init:
            raise InputError(f"--evals {self.evals} is smaller than the initial population "
                             f"({self.n_init}); raise --evals to at least {self.n_init} or "
                             "lower --init")
        needs_task = CHOICE_QUALITY & set(self.objectives)
        if needs_task and not self.tasks:
            raise InputError(f"--tasks is empty; the {min(needs_task)} objective needs at "
                             "least one task, e.g. --tasks arc_easy")
        for name, lim in (("--limit", self.limit), ("--final-limit", self.final_limit)):
            if lim is not None and (not isinstance(lim, int) or lim < 1):
                raise InputError(f"{name} {lim}: give a positive number of items per task, or "
                                 "0 for all")
        if self.final_max < 0:
            raise InputError(f"--final-max {self.final_max}: must be 0 (no re-measurement) "
                             "or more")
        for name, v in (("--inner-pop", self.inner_pop), ("--inner-gens", self.inner_gens)):
            if v < 1:
                raise InputError(f"{name} {v}: must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        d["objectives"] = list(self.objectives)
        d["constraints"] = self.constraints.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["constraints"] = Constraints.from_dict(d.get("constraints") or {})
        kw["tasks"] = tuple(d.get("tasks") or ())
        kw["objectives"] = tuple(d.get("objectives") or ())
        return cls(**kw)

    def differences(self, other: SearchConfig) -> list[str]:
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: stored {a[k]!r}, given {b[k]!r}" for k in a if a[k] != b.get(k)]
