"""`EvalResult`: one task's accuracy for one model or subnet, with its provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EVALUATOR_VERSION = 1


@dataclass(frozen=True)
class EvalResult:
    task: str
    metric: str  # "acc", "acc_norm" or "perplexity"
    accuracy: float  # the metric's value (perplexity for metric == "perplexity")
    stderr: float
    n: int
    model: str  # model fingerprint
    subnet: str  # SubnetSpec key ("full" for the base model)
    predictions: tuple[int, ...] = ()  # per-item predicted choice
    golds: tuple[int, ...] = ()
    evaluator_version: int = EVALUATOR_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. per-subject breakdown

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        d = dict(d)
        d["predictions"] = tuple(d.get("predictions", ()))
        d["golds"] = tuple(d.get("golds", ()))
        return cls(**d)
