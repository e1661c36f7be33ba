"""A deterministic fake backend for tests: seeded synthetic latencies, injectable noise,
out-of-memory failures, crashes and `kill -9`.

Latency follows a roofline-like cost from `hwnas.supernet.stats.layer_cost` (FLOPs and bytes
of the timed thing) plus a fixed overhead; each call adds seeded noise. Nothing is run. The
settings come from the constructor, or for subprocess tests from the environment variable
`HWNAS_FAKE_BACKEND` (JSON with the same field names).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from hwnas.errors import InputError
from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import BackendError, OutOfMemory, Telemetry
from hwnas.profilers.programs import Program

ENV = "HWNAS_FAKE_BACKEND"


@dataclass(frozen=True)
class FakeSettings:
    seed: int = 0
    noise: float = 0.01  # relative standard deviation of each call
    noisy_targets: tuple[str, ...] = ()  # targets whose calls get 10x the noise
    flops_per_ms: float = 2e7
    bytes_per_ms: float = 1e7
    overhead_ms: float = 0.05
    oom_above_tokens: int | None = None  # tokens + context above this: out of memory
    crash_on: tuple[str, ...] = ()  # workload names ("prefill@128") whose prepare raises
    kill_after_prepares: int | None = None  # SIGKILL this process at that prepare
    sleep: bool = False  # really wait the synthetic time (for budget tests)
    trace: str | None = None  # append each timed call's wall-clock start and end to this file
    telemetry: Telemetry = field(default_factory=dict)
    cache_bytes: int = 0  # the last-level cache it claims: 0 times every layer alone

    @classmethod
    def from_dict(cls, data: Mapping[str, object], source: str = "fake backend settings"
                  ) -> FakeSettings:
        """Settings by field name; an unknown name is an error, never silently dropped."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(known)}")
        values = dict(data)
        for k in ("noisy_targets", "crash_on"):
            v = values.get(k)
            if isinstance(v, list):  # JSON has no tuples
                values[k] = tuple(v)
        return cls(**values)  # type: ignore[arg-type]  # JSON values, by field name

    @classmethod
    def from_env(cls) -> FakeSettings:
        raw = os.environ.get(ENV)
        if not raw:
            return cls()
        return cls.from_dict(json.loads(raw), source=f"${ENV}")


def program_cost(program: Program) -> tuple[float, float]:
    """FLOPs and bytes: every parameter used once per token; weights and inputs read once."""
    spec = program.spec
    params = sum(p.numel() for p in program.module.parameters())
    flops = 2.0 * spec.batch * spec.tokens * params
    nbytes = 4.0 * (params + sum(t.numel() for t in program.inputs))
    return flops, nbytes


def synthetic_ms(program: Program, s: FakeSettings) -> float:
    """The noiseless latency of a program: a smooth, monotone function of its cost."""
    spec = program.spec
    flops, nbytes = program_cost(program)
    scale = {"fp32": 1.0, "bf16": 0.7, "fp16": 0.6, "int8": 0.5}[spec.dtype]
    return s.overhead_ms + scale * max(flops / s.flops_per_ms, nbytes / s.bytes_per_ms)


class FakeRunnable:
    def __init__(self, base_ms: float, rel_noise: float, seed: int, sleep: bool,
                 trace: str | None = None) -> None:
        self.base_ms, self.rel_noise, self.sleep = base_ms, rel_noise, sleep
        self.rng = np.random.default_rng(seed)
        self.trace = trace

    def time_once(self) -> float:
        start = time.time()
        ms = float(self.base_ms * max(0.05, 1.0 + self.rng.normal(0.0, self.rel_noise)))
        if self.sleep:
            time.sleep(ms / 1000.0)
        if self.trace is not None:
            with open(self.trace, "a") as fh:
                fh.write(f"{os.getpid()} {start!r} {time.time()!r}\n")
        return ms


_INSTANCES = itertools.count()


class FakeBackend:
    name = "fake"
    libraries = ("torch",)
    needs_weights = False  # programs are built on the meta device: shapes, no memory

    def __init__(self, settings: FakeSettings | None = None) -> None:
        self.settings = settings or FakeSettings.from_env()
        self.prepares = 0
        self._instance = next(_INSTANCES)  # unlike id(), never reused after collection

    def identity(self) -> str:
        """This instance: its runnables draw seeded noise call by call, so a reference
        reused by another instance would continue another history and the same run would
        give other figures in another process (`hwnas.profilers.subnet.backend_identity`)."""
        return f"{self._instance}:{self.settings!r}"

    def check(self, hw: HardwareProfile) -> None:
        return None

    def setup(self, hw: HardwareProfile) -> None:
        return None

    def prepare(self, program: Program, hw: HardwareProfile) -> FakeRunnable:
        s, spec = self.settings, program.spec
        self.prepares += 1
        if s.kill_after_prepares is not None and self.prepares > s.kill_after_prepares:
            os.kill(os.getpid(), signal.SIGKILL)
        name = f"{spec.phase}@{spec.tokens if spec.phase == 'prefill' else spec.context}"
        if name in s.crash_on:
            raise BackendError(f"fake backend: injected crash on {name}")
        if s.oom_above_tokens is not None and spec.tokens + spec.context > s.oom_above_tokens:
            raise OutOfMemory(f"fake backend: injected out of memory at {name}")
        digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).digest()
        seed = s.seed * 1_000_003 + int.from_bytes(digest[:4], "little")
        noise = s.noise * (10 if spec.target in s.noisy_targets else 1)
        return FakeRunnable(synthetic_ms(program, s), noise, seed, s.sleep, s.trace)

    def telemetry(self, hw: HardwareProfile) -> Telemetry:
        return dict(self.settings.telemetry)

    def cache_bytes(self, hw: HardwareProfile) -> int:
        return self.settings.cache_bytes
