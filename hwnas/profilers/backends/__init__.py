"""Backends, registered by name and imported only when used.

`backend_for(hw)` picks the one a profile needs: the profile's `backend`, except that torch
on a `cuda:N` device is the CUDA backend (CUDA events + NVML).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import Backend, BackendError, OutOfMemory, Telemetry
from hwnas.registry import Registry

if TYPE_CHECKING:
    from hwnas.hw_profiles.fingerprint import Fingerprint

BACKENDS: Registry[Callable[[], Backend]] = Registry("backend")
BACKENDS.register("torch", "hwnas.profilers.backends.torch_cpu:TorchCPU")
BACKENDS.register("cuda", "hwnas.profilers.backends.cuda:TorchCUDA")
BACKENDS.register("onnxruntime", "hwnas.profilers.backends.onnxrt:OnnxRuntime")
BACKENDS.register("openvino", "hwnas.profilers.backends.openvino_rt:OpenVINO")
BACKENDS.register("ipex", "hwnas.profilers.backends.ipex:IPEX")
BACKENDS.register("fake", "hwnas.profilers.backends.fake:FakeBackend")


def backend_name(hw: HardwareProfile) -> str:
    return "cuda" if hw.backend == "torch" and hw.device_kind == "cuda" else hw.backend


def backend_for(hw: HardwareProfile) -> Backend:
    """A ready backend for `hw`: library present, device usable (else a clear InputError)."""
    backend = BACKENDS.get(backend_name(hw))()
    backend.check(hw)
    return backend


def machine_fingerprint(hw: HardwareProfile, backend: Backend) -> Fingerprint:
    """The fingerprint of this machine, read through the backend's own NVML on GPUs."""
    from hwnas.hw_profiles import collect_fingerprint

    nvml = getattr(backend, "nvml", None)
    return collect_fingerprint(hw.device, nvml() if callable(nvml) else None)


__all__ = ["BACKENDS", "Backend", "BackendError", "OutOfMemory", "Telemetry", "backend_for",
           "backend_name", "machine_fingerprint"]
