"""The one protocol every backend follows, and the pieces the CPU backends share.

A backend splits into "how to run" (`prepare`: turn a backend-neutral `Program` into a
`Runnable` for this device and dtype) and "how to read the time" (the runnable's
`time_once`: wall clock on CPUs, CUDA events on GPUs). It imports its heavy library only in
`check`/`prepare` and says what to install when it is missing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from hwnas.errors import HwnasError
from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.programs import Program
from hwnas.profilers.timer import Runnable

if TYPE_CHECKING:
    import torch

Telemetry = dict[str, object]
"""Device state recorded next to a measurement: empty on CPUs, `GpuState` on GPUs, the
configured values for the fake backend."""


class BackendError(HwnasError):
    """A backend failed to prepare or run one program (not the user's input)."""


class OutOfMemory(BackendError):
    """The device ran out of memory for this program; it is recorded, not retried."""


class Backend(Protocol):
    name: str
    libraries: tuple[str, ...]  # distributions whose versions decide its latency

    def check(self, hw: HardwareProfile) -> None:
        """Raise MissingDependencyError / InputError when `hw` cannot run here."""
        ...

    def setup(self, hw: HardwareProfile) -> None:
        """Process-wide settings (thread count) before any timing."""
        ...

    def prepare(self, program: Program, hw: HardwareProfile) -> Runnable:
        ...

    def telemetry(self, hw: HardwareProfile) -> Telemetry:
        """Device state worth recording next to a measurement (GPU clocks, throttling)."""
        ...

    def cache_bytes(self, hw: HardwareProfile) -> int:
        """The device's last-level cache: a layer is timed as a chain of copies whose weights
        exceed it (`timer.in_context`), so that they are cold as inside the model."""
        ...


class WallClock:
    """Times one call of `fn` with the monotonic high-resolution clock."""

    def __init__(self, fn: Callable[[], object], keep: object = None) -> None:
        self.fn = fn
        self.keep = keep  # whatever must stay alive while fn runs (session, module)

    def time_once(self) -> float:
        t0 = time.perf_counter_ns()
        self.fn()
        return (time.perf_counter_ns() - t0) / 1e6


def building(backend: Backend) -> contextlib.AbstractContextManager[object]:
    """Where programs for `backend` are built: the meta device for a backend that runs
    nothing (the fake, `needs_weights = False`: 7B-sized layers cost no memory), else as
    usual."""
    if getattr(backend, "needs_weights", True):
        return contextlib.nullcontext()
    import torch
    return torch.device("meta")


DEFAULT_CPU_CACHE = 32 * 2**20  # when the kernel lists no cache sizes


def cpu_cache_bytes() -> int:
    from hwnas.hw_profiles.fingerprint import cpu_cache_bytes as read
    return read() or DEFAULT_CPU_CACHE


class CpuDevice:
    """What the CPU backends share: no device telemetry, the CPU's last-level cache."""

    def telemetry(self, hw: HardwareProfile) -> Telemetry:
        return {}

    def cache_bytes(self, hw: HardwareProfile) -> int:
        return cpu_cache_bytes()


def threads_for(hw: HardwareProfile) -> int:
    """The profile's thread count; 0 means every core this process may use."""
    if hw.threads:
        return hw.threads
    import os
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def set_torch_threads(hw: HardwareProfile) -> None:
    import torch
    torch.set_num_threads(threads_for(hw))


def torch_dtype(name: str) -> torch.dtype:
    import torch
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
            "int8": torch.float32}[name]


def cast_inputs(inputs: tuple[torch.Tensor, ...], dtype: torch.dtype,
                device: str = "cpu") -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)
                 for t in inputs)
