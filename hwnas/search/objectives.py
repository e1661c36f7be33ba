"""Objectives and constraints of a search, by name.

An objective maps the values measured for a subnet (a dict such as ``{"accuracy": 0.61,
"latency_ms": 140.2, "params": 1.1e8, "memory_bytes": 4.5e8}``) to one number. pymoo
minimises, so every objective also has a sign (+1 minimise, -1 maximise) and a fixed
normalisation against the full model (the run's reference), which the hypervolume uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hwnas.errors import InputError, NotFoundError
from hwnas.registry import Registry


@dataclass(frozen=True)
class Objective:
    name: str
    key: str  # the measured value it reads
    sense: str  # "min" | "max"
    unit: str
    description: str
    # normalisation: value / reference (relative), 1 - value (share), or
    # log(value) / log(reference) (log: perplexity, whose bad values span decades)
    scale: str = "relative"  # "relative" | "share" | "log"

    @property
    def sign(self) -> float:
        return 1.0 if self.sense == "min" else -1.0

    def normalise(self, value: float, reference: float, floor: float = 0.0) -> float:
        """A minimised, unit-free number: 1.0 is the full model for relative objectives; for
        shares (accuracy) it is (1 - value) / (1 - floor), so 0 is perfect and 1 is the floor:
        guessing (the tasks' chance accuracy), or nothing right when no floor is known."""
        if self.scale == "share":
            return (1.0 - value) / max(1.0 - floor, 1e-9)
        if self.scale == "log":
            return math.log(value) / math.log(reference) if reference > 1 else math.log(value)
        return value / reference if reference else value

    def ref_point(self) -> float:
        """The hypervolume's reference point in normalised units: anything no better than
        guessing (share), 1.2x the full model (relative) or the cube of the full model's
        perplexity (log; about uniform guessing over a 50k vocabulary) adds nothing."""
        return {"share": 1.0, "log": 3.0}.get(self.scale, 1.2)


OBJECTIVES: Registry[Objective] = Registry("objective")
for _o in (
    Objective("accuracy", "accuracy", "max", "", "accuracy on the run's tasks (mean over tasks)",
              scale="share"),
    Objective("gold_prob", "gold_prob", "max", "",
              "the gold choice's mean softmax probability on the run's tasks (the same items "
              "for every subnet): a continuous, lower-noise accuracy proxy", scale="share"),
    Objective("latency", "latency_ms", "min", "ms", "the hardware profile's primary metric"),
    Objective("params", "params", "min", "", "parameters of the subnet"),
    Objective("memory", "memory_bytes", "min", "B",
              "weights + KV cache at the primary metric's longest context"),
    Objective("perplexity", "perplexity", "min", "",
              "perplexity on the run's perplexity task, or on held-out text (heldout_ppl) "
              "when it names none: a cheap, low-noise quality signal; the run's other tasks "
              "are then scored only when the Pareto set is re-measured", scale="log"),
):
    OBJECTIVES.register(_o.name, _o)


QUALITY = {"accuracy", "gold_prob", "perplexity"}  # objectives read from evaluations
# read from the run's multiple-choice tasks (perplexity: from its perplexity task, or held-out
# text when it names none; `hwnas.search.quality.task_plan`)
CHOICE_QUALITY = frozenset({"accuracy", "gold_prob"})


def objectives(names: Sequence[str]) -> list[Objective]:
    if not names:
        raise InputError("--objectives is empty; name two or more of "
                         f"{', '.join(OBJECTIVES.names())}")
    out = []
    for n in names:
        try:
            out.append(OBJECTIVES.get(n.strip()))
        except NotFoundError as e:
            raise InputError(f"--objectives: {e}") from None
    if len({o.name for o in out}) != len(out):
        raise InputError(f"--objectives {','.join(names)}: an objective is named twice")
    if len(out) < 2:
        raise InputError(f"--objectives {','.join(names)}: a multi-objective search needs at "
                         "least two, e.g. accuracy,latency")
    quality = sorted(QUALITY & {o.name for o in out})
    if len(quality) > 1:
        raise InputError(f"--objectives: choose one of {', '.join(sorted(QUALITY))}, not "
                         f"{' and '.join(quality)} (one scores the run's tasks)")
    return out


@dataclass(frozen=True)
class Constraints:
    """Upper bounds on latency and parameters, a lower bound on accuracy (None: unbounded)."""

    max_latency_ms: float | None = None
    max_params: float | None = None
    min_accuracy: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"max_latency_ms": self.max_latency_ms, "max_params": self.max_params,
                "min_accuracy": self.min_accuracy}

    @classmethod
    def from_dict(cls, d: dict[str, float | None]) -> Constraints:
        return cls(d.get("max_latency_ms"), d.get("max_params"), d.get("min_accuracy"))

    def active(self) -> list[tuple[str, str, float]]:
        """(measured key, "max"|"min", bound) for each set bound, in a fixed order."""
        out = []
        if self.max_latency_ms is not None:
            out.append(("latency_ms", "max", float(self.max_latency_ms)))
        if self.max_params is not None:
            out.append(("params", "max", float(self.max_params)))
        if self.min_accuracy is not None:
            out.append(("accuracy", "min", float(self.min_accuracy)))
        return out

    def violation(self, values: dict[str, float]) -> list[float]:
        """pymoo's G: <= 0 is satisfied; scaled by the bound so the entries are comparable."""
        g = []
        for key, kind, bound in self.active():
            v = float(values[key])
            d = (v - bound) if kind == "max" else (bound - v)
            g.append(d / abs(bound) if bound else d)
        return g

    def feasible(self, values: dict[str, float]) -> bool:
        return all(g <= 0 for g in self.violation(values))

    def check(self) -> None:
        for name, v in (("--max-latency-ms", self.max_latency_ms),
                        ("--max-params", self.max_params)):
            if v is not None and v <= 0:
                raise InputError(f"{name} {v}: must be positive")
        if self.min_accuracy is not None and not 0.0 <= self.min_accuracy <= 1.0:
            raise InputError(f"--min-accuracy {self.min_accuracy}: an accuracy lies in 0..1")
