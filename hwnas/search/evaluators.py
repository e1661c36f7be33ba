"""Real evaluations of subnets, behind one small protocol, and the exact analytic values.

An evaluator answers `evaluate(spec)` with the measured values of one subnet (`Measured`):
accuracy or perplexity from the evaluator, latency from the profiler, parameters and memory
computed exactly. `remeasure(specs)` measures again at the end of a run (accuracy on more
items, fresh timing of all of them interleaved, so their latency ratios are fair); ``None``
among `specs` means the full model. `FakeEvaluator` (synthetic, deterministic
functions of the spec) keeps tests fast; `hwnas.search.real.RealEvaluator` is the real one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hwnas.errors import InputError
from hwnas.progress import Progress
from hwnas.registry import Registry
from hwnas.store import Record, Storage
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SearchSpace, SubnetSpec
from hwnas.supernet.stats import DTYPE_BYTES, subnet_stats

if TYPE_CHECKING:
    from hwnas.executors import Executor
    from hwnas.predictors.train import LatencyBundle
    from hwnas.search.config import SearchConfig
    from hwnas.supernet.supernet import Supernet

Description = dict[str, str | int | float]
"""What an evaluator says about itself in a run's ``start`` event (plain JSON)."""


@dataclass(frozen=True)
class Measured:
    """The measured values of one subnet (keys: accuracy | perplexity, latency_ms, params,
    memory_bytes) and how they were obtained (per task, per workload, item counts)."""

    values: dict[str, float]
    detail: dict[str, Any] = field(default_factory=dict)  # JSON, its shape per evaluator

    def to_dict(self) -> Record:
        return {"values": dict(self.values), "detail": dict(self.detail)}

    @classmethod
    def from_dict(cls, d: Record) -> Measured:
        return cls({k: float(v) for k, v in d["values"].items()}, dict(d.get("detail") or {}))


class Evaluator(Protocol):
    space: SearchSpace

    def evaluate(self, spec: SubnetSpec) -> Measured: ...

    def reference(self) -> Measured: ...

    def remeasure(self, specs: list[SubnetSpec | None],
                  progress: Progress | None = None) -> list[Measured]: ...

    def latency_predictor(self) -> LatencyBundle | None: ...

    def layer_order(self) -> tuple[int, ...] | None:
        """Layers from least to most influential (the initial design drops the k first), or
        None when unknown."""
        ...

    def exact(self, spec: SubnetSpec) -> dict[str, float]: ...

    def describe(self) -> Description: ...


@dataclass(frozen=True)
class EvaluatorOptions:
    """What an evaluator builder may be given besides the config: `lock`, a file whose flock
    is held while timing (machines shared with other timing runs); `supernet`, an already
    loaded model to use instead of loading `config.model` (tests, notebooks). An evaluator
    that does not time or load a model (the fake one) has no use for them."""

    lock: str | Path | None = None
    supernet: Supernet | None = None
    executor: Executor | None = None

    @classmethod
    def of(cls, **options: object) -> EvaluatorOptions:
        """From keyword options (`search(..., lock=...)`): an unknown name or a value of the
        wrong kind is an `InputError` naming it and what is accepted."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise InputError(f"unknown evaluator option(s) {', '.join(unknown)}; known: "
                             f"{', '.join(known)}")
        lock = options.get("lock")
        if lock is not None and not isinstance(lock, str | Path):
            raise InputError(f"evaluator option lock: expected a file path or None, got "
                             f"{type(lock).__name__}")
        supernet = options.get("supernet")
        if supernet is not None:
            from hwnas.supernet.supernet import Supernet

            if not isinstance(supernet, Supernet):
                raise InputError(f"evaluator option supernet: expected a Supernet or None, got "
                                 f"{type(supernet).__name__}")
        executor = options.get("executor")
        if executor is not None and not callable(getattr(executor, "map", None)):
            raise InputError(f"evaluator option executor: expected an Executor or None, got "
                             f"{type(executor).__name__}")
        return cls(lock, supernet, executor)  # type: ignore[arg-type]  # checked above


class EvaluatorBuilder(Protocol):
    """Builds the evaluator a config names (`SearchConfig.evaluator`) for run folder
    `run_dir`, checking the inputs before loading anything heavy."""

    def __call__(self, config: SearchConfig, store: Storage, options: EvaluatorOptions,
                 progress: Progress | None, run_dir: Path) -> Evaluator: ...


def analytic(arch: ArchInfo, spec: SubnetSpec, dtype: str, context: int,
             batch: int = 1) -> dict[str, float]:
    """Exact parameters and memory (weights + KV cache at `context` positions)."""
    st = subnet_stats(arch, spec, dtype)
    kv = sum(2 * k * arch.head_dim * context * batch * DTYPE_BYTES[dtype] for k in spec.kv_heads)
    return {"params": float(st.params), "memory_bytes": float(st.weight_bytes + kv)}


# ---- a deterministic fake, for tests and quick demos -----------------------------------------
class FakeEvaluator:
    """Synthetic accuracy and latency: smooth functions of the spec plus a fixed per-subnet
    jitter (a hash of its key), so the same subnet always gets the same numbers."""

    def __init__(self, space: SearchSpace, dtype: str = "fp32", context: int = 144,
                 jitter: float = 0.004) -> None:
        self.space = space
        self.dtype = dtype
        self.context = context
        self.jitter = jitter
        self.calls = 0
        n = space.arch.num_layers
        pos = np.linspace(0.0, 1.0, n)
        self._importance = 0.4 + 2.0 * (pos - 0.5) ** 2 + np.where(np.arange(n) == 0, 2.0, 0.0)

    def _noise(self, spec: SubnetSpec, salt: str) -> float:
        h = hashlib.sha256((salt + spec.key()).encode()).digest()
        return (int.from_bytes(h[:4], "little") / 2 ** 32 - 0.5) * 2.0

    def values(self, spec: SubnetSpec, salt: str = "") -> dict[str, float]:
        arch, sp = self.space.arch, self.space
        wmax, kmax = sp.width_choices[-1], sp.kv_choices[-1]
        q = 0.0
        lat = 3.0
        for layer, w, k in zip(spec.layers, spec.intermediate_size, spec.kv_heads, strict=True):
            q += (self._importance[layer] * (0.55 + 0.45 * (w / wmax) ** 0.5)
                  * (0.8 + 0.2 * k / kmax))
            lat += 0.4 + 1.0 * w / wmax + 0.35 * k / kmax
        q /= float(self._importance.sum())
        acc = 0.25 + 0.45 * q ** 3 + self.jitter * self._noise(spec, "acc" + salt)
        lat *= 1.0 + 0.01 * self._noise(spec, "lat" + salt)
        out = {"accuracy": float(acc), "latency_ms": float(lat),
               "perplexity": float(np.exp(2.3 + 3.0 * (1.0 - q)))}
        out.update(analytic(arch, spec, self.dtype, self.context))
        return out

    def evaluate(self, spec: SubnetSpec) -> Measured:
        self.calls += 1
        return Measured(self.values(spec), {"evaluator": "fake"})

    def reference(self) -> Measured:
        return Measured(self.values(self.space.full()), {"evaluator": "fake"})

    def remeasure(self, specs: list[SubnetSpec | None],
                  progress: Progress | None = None) -> list[Measured]:
        return [Measured(self.values(self.space.full() if s is None else s, salt="again"),
                         {"evaluator": "fake", "remeasured": True}) for s in specs]

    def latency_predictor(self) -> LatencyBundle | None:
        return None

    def layer_order(self) -> tuple[int, ...] | None:
        """The synthetic truth's own order: least important layers first."""
        return tuple(int(i) for i in np.argsort(self._importance, kind="stable"))

    def exact(self, spec: SubnetSpec) -> dict[str, float]:
        return analytic(self.space.arch, spec, self.dtype, self.context)

    def describe(self) -> Description:
        return {"evaluator": "fake", "jitter": self.jitter}

    @classmethod
    def build(cls, config: SearchConfig, store: Storage, options: EvaluatorOptions,
              progress: Progress | None, run_dir: Path) -> FakeEvaluator:
        """Synthetic values need neither a timing lock nor a loaded model (`options`)."""
        from hwnas.supernet.arch import arch_info
        from hwnas.supernet.models import load_config

        arch = arch_info(load_config(config.model))
        return cls(SearchSpace.default(arch))


EVALUATORS: Registry[EvaluatorBuilder] = Registry("evaluator")
EVALUATORS.register("real", "hwnas.search.real:build")
EVALUATORS.register("fake", FakeEvaluator.build)
