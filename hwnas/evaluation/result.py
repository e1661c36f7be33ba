"""`EvalResult`: one task's score for one model or subnet, with its provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwnas.store import Record

EVALUATOR_VERSION = 2  # 2: multiple choice records the gold choice's probability


@dataclass(frozen=True)
class EvalResult:
    task: str
    metric: str  # "acc", "acc_norm" or "perplexity"
    score: float  # the value of `metric`: an accuracy, or a perplexity (lower is better)
    stderr: float
    n: int
    model: str  # model fingerprint
    subnet: str  # SubnetSpec key ("full" for the base model)
    predictions: tuple[int, ...] = ()  # per-item predicted choice
    golds: tuple[int, ...] = ()
    evaluator_version: int = EVALUATOR_VERSION
    extra: dict[str, object] = field(default_factory=dict)  # e.g. per-subject breakdown

    def to_dict(self) -> Record:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Record) -> EvalResult:
        """From `to_dict()`, or from a record stored before the field was renamed, whose
        `"accuracy"` holds the score (the store is append-only: old records stay)."""
        d = dict(d)
        if "accuracy" in d and "score" not in d:
            d["score"] = d.pop("accuracy")
        d["predictions"] = tuple(d.get("predictions", ()))
        d["golds"] = tuple(d.get("golds", ()))
        return cls(**d)


def score_of(record: Record) -> float:
    """The score of a stored evaluation record, old (`"accuracy"`) or new (`"score"`)."""
    return float(record["score"] if "score" in record else record["accuracy"])
