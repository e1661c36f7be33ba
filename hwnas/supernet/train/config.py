"""`TrainConfig`: everything a super-network training run is made from."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from hwnas.errors import InputError

# Fields that only say when to stop or how often to save: a resumed run may change them.
STOPPING = ("steps", "minutes", "tokens", "save_every", "progress", "snapshot_minutes")
SCHEDULES = ("constant", "cosine")
SAMPLERS = ("influence", "ranked", "uniform")
RULES = ("sandwich", "alternate")


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
    schedule: str = "constant"  # constant, or cosine: decay to min_lr_ratio * lr at the budget
    min_lr_ratio: float = 0.1
    temperature: float = 1.0  # distillation temperature (loss scaled by T^2)
    lm_weight: float = 0.0  # weight of the plain language-model loss beside the KL
    full_weight: float = 1.0  # weight of the full network's loss in the sandwich
    random_subnets: int = 1  # random band subnets per step besides the band's smallest
    band: tuple[float, float] = (1.1, 2.0)  # speed-up band the subnets come from
    # the band's speed-up by this hardware profile's trained latency predictor (primary
    # metric); None: by the weight bytes read per token
    hw: str | None = None
    sampler: str = "influence"  # which layers sampled subnets drop: influence, ranked, uniform
    # what each step trains: sandwich (full + band's smallest + random ones), or alternate
    # (LLaMA-NAS after InstaTune: the full network on even steps, one random subnet on odd)
    rule: str = "sandwich"
    seed: int = 0
    bf16: str = "auto"  # auto (when the CPU has native bf16), on, off
    device: str = "cpu"
    # low-rank adapters instead of every weight (`hwnas.supernet.train.lora`): the teacher is
    # the same model with its adapters off, so one copy of the weights serves both
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: float = 32.0
    text: str | None = None  # a user text/JSONL file instead of the bundled passages
    max_documents: int | None = None
    save_every: int = 50
    snapshot_minutes: tuple[float, ...] = ()  # also publish the model at these wall times
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
        if any(m <= 0 for m in self.snapshot_minutes):
            raise InputError(f"--snapshot-minutes must be positive, got "
                             f"{list(self.snapshot_minutes)}")
        if self.temperature <= 0:
            raise InputError(f"--temperature must be positive, got {self.temperature}")
        lo, hi = self.band
        if not 1.0 <= lo < hi:
            raise InputError(f"--band {lo},{hi}: give two speed-ups 1 <= low < high, e.g. 1.1,2")
        if self.sampler not in SAMPLERS:
            raise InputError(f"--sampler '{self.sampler}': choose {' or '.join(SAMPLERS)}")
        if self.rule not in RULES:
            raise InputError(f"--rule '{self.rule}': choose {' or '.join(RULES)}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"--schedule '{self.schedule}': choose {' or '.join(SCHEDULES)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise InputError(f"--min-lr-ratio must be between 0 and 1, got {self.min_lr_ratio}")
        if self.bf16 not in ("auto", "on", "off"):
            raise InputError(f"--bf16 '{self.bf16}': choose auto, on or off")
        if re.fullmatch(r"cpu|cuda(:\d+)?", self.device) is None:
            raise InputError(f"--device {self.device}: choose cpu, cuda or cuda:N")
        if self.lora_rank <= 0 or self.lora_alpha <= 0:
            raise InputError(f"--lora-rank and --lora-alpha must be positive, got "
                             f"{self.lora_rank} and {self.lora_alpha}")

    def done_fraction(self, step: int, tokens: int, seconds: float) -> float:
        """How far through its budget (steps, tokens or minutes) a run is, 0..1."""
        if self.steps is not None:
            return min(1.0, step / self.steps)
        if self.tokens is not None:
            return min(1.0, tokens / self.tokens)
        assert self.minutes is not None
        return min(1.0, seconds / (self.minutes * 60.0))

    def learning_rate(self, step: int, tokens: int, seconds: float) -> float:
        """Linear warm-up, then constant or a cosine decay to `min_lr_ratio * lr` at the end
        of the budget (for a `--minutes` budget, by the wall time spent so far)."""
        if self.warmup and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.schedule == "constant":
            return self.lr
        f = self.done_fraction(step, tokens, seconds)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio)
                          * 0.5 * (1 + math.cos(math.pi * f)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["band"] = list(self.band)
        d["snapshot_minutes"] = list(self.snapshot_minutes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["band"] = tuple(kw.get("band", (1.1, 2.0)))
        kw.setdefault("sampler", "uniform")  # runs from before the sampler setting dropped
        # layers uniformly: they resume as they were made
        kw["snapshot_minutes"] = tuple(kw.get("snapshot_minutes", ()))
        return cls(**kw)

    def identity(self) -> str:
        """What a resumed run must share with the run it continues."""
        d = {k: v for k, v in self.to_dict().items() if k not in STOPPING}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def with_stopping(self, other: TrainConfig) -> TrainConfig:
        return replace(self, **{k: getattr(other, k) for k in STOPPING})
