"""`Workload`: one timed workload of a hardware profile, the same value for the profilers that
time it and the predictors that predict it: `tokens` new tokens (a prefill of that length, or
one decode step) on a KV cache already holding `context` positions, at a batch size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Phase = Literal["prefill", "decode"]


@dataclass(frozen=True, order=True)
class Workload:
    phase: Phase
    tokens: int
    context: int
    batch: int = 1

    @classmethod
    def prefill(cls, tokens: int, batch: int = 1) -> Workload:
        return cls("prefill", tokens, 0, batch)

    @classmethod
    def decode(cls, context: int, batch: int = 1) -> Workload:
        return cls("decode", 1, context, batch)

    @property
    def name(self) -> str:
        """The hardware profile's workload names: "prefill@128", "decode@144"."""
        if self.phase == "prefill":
            return f"prefill@{self.tokens}"
        return f"decode@{self.context}"

    @property
    def cost(self) -> int:
        """A sort key from cheap to dear."""
        return self.tokens * 1000 + self.context

    def to_dict(self) -> dict[str, int | str]:
        return {"phase": self.phase, "tokens": self.tokens, "context": self.context,
                "batch": self.batch}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Workload:
        """From `to_dict()` or a `TimingSpec.to_dict()` (which has these fields and more)."""
        phase = d["phase"]
        if phase not in ("prefill", "decode"):
            raise ValueError(f"workload phase {phase!r}: use 'prefill' or 'decode'")
        return cls(phase, _int(d, "tokens"), _int(d, "context"), _int(d, "batch", 1))


def _int(d: Mapping[str, object], key: str, default: int | None = None) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"workload field '{key}': an integer, got {v!r}")
    return v
