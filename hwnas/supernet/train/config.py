"""`TrainConfig`: everything a super-network training run is made from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from hwnas.errors import InputError

# Fields that only say when to stop or how often to save: a resumed run may change them.
STOPPING = ("steps", "minutes", "tokens", "save_every", "progress")


@dataclass(frozen=True)
class TrainConfig:
    model: str
    out: str
    steps: int | None = None
    minutes: float | None = None
    tokens: int | None = None
    seq_len: int = 256
    batch: int = 4  # sequences per micro-batch
    accum: int = 1  # micro-batches per optimiser step
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup: int = 0  # linear warm-up steps
    temperature: float = 1.0  # distillation temperature (loss scaled by T^2)
    lm_weight: float = 0.0  # weight of the plain language-model loss beside the KL
    full_weight: float = 1.0  # weight of the full network's loss in the sandwich
    random_subnets: int = 1  # random band subnets per step besides the band's smallest
    band: tuple[float, float] = (1.1, 2.0)  # proxy speed-up band the subnets come from
    seed: int = 0
    bf16: str = "auto"  # auto (when the CPU has native bf16), on, off
    device: str = "cpu"
    lora: bool = False
    text: str | None = None  # a user text/JSONL file instead of the bundled passages
    max_documents: int | None = None
    save_every: int = 50
    progress: bool = True

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.steps, self.minutes, self.tokens)) != 1:
            raise InputError("give exactly one of --steps N, --minutes N or --tokens N")
        for name in ("steps", "tokens", "seq_len", "batch", "accum", "save_every"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive, got {v}")
        if self.minutes is not None and self.minutes <= 0:
            raise InputError(f"--minutes must be positive, got {self.minutes}")
        if self.temperature <= 0:
            raise InputError(f"--temperature must be positive, got {self.temperature}")
        lo, hi = self.band
        if not 1.0 <= lo < hi:
            raise InputError(f"--band {lo},{hi}: give two speed-ups 1 <= low < high, e.g. 1.1,2")
        if self.bf16 not in ("auto", "on", "off"):
            raise InputError(f"--bf16 '{self.bf16}': choose auto, on or off")
        if self.device != "cpu":
            raise InputError(f"--device {self.device}: not available yet; supernet training "
                             "runs on the CPU (--device cpu)")
        if self.lora:
            raise InputError("--lora: not available yet; train all weights (drop --lora)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["band"] = list(self.band)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["band"] = tuple(kw.get("band", (1.1, 2.0)))
        return cls(**kw)

    def identity(self) -> str:
        """What a resumed run must share with the run it continues."""
        d = {k: v for k, v in self.to_dict().items() if k not in STOPPING}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def with_stopping(self, other: TrainConfig) -> TrainConfig:
        return replace(self, **{k: getattr(other, k) for k in STOPPING})
