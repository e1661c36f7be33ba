"""PyTorch on an NVIDIA GPU: CUDA events for timing, NVML for telemetry.

Each timed call is bracketed by two CUDA events on the current stream and read after the end
event has synchronised, so the time is the GPU's, not the launch overhead's. NVML telemetry
(clocks, temperature, power, throttle reasons) is sampled before and after each group of
measurements and stored with them. The CUDA API and NVML are injectable so the path is
tested with fakes on machines without a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from hwnas.errors import InputError, MissingDependencyError
from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import OutOfMemory, Telemetry, cast_inputs, torch_dtype
from hwnas.profilers.programs import Program

if TYPE_CHECKING:
    from typing_extensions import Self

    from hwnas.hw_profiles.fingerprint import Nvml


DEFAULT_GPU_CACHE = 50 * 2**20


class CudaEvent(Protocol):
    def record(self) -> None: ...
    def synchronize(self) -> None: ...
    def elapsed_time(self, end: Self, /) -> float: ...


class CudaAPI(Protocol):
    """The part of `torch.cuda` this backend uses (tests pass a fake; a fake may add
    `torch_device`, the device its modules really go to)."""

    def Event(self, enable_timing: bool = False) -> CudaEvent: ...  # torch.cuda.Event
    def is_available(self) -> bool: ...
    def device_count(self) -> int: ...
    def set_device(self, device: int) -> None: ...
    def get_device_properties(self, device: int) -> object: ...


class CudaEventTimer:
    def __init__(self, api: CudaAPI, fn: Callable[[], object], keep: object = None) -> None:
        self.api, self.fn, self.keep = api, fn, keep

    def time_once(self) -> float:
        start = self.api.Event(enable_timing=True)
        end = self.api.Event(enable_timing=True)
        start.record()
        self.fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))


class TorchCUDA:
    name = "cuda"
    libraries = ("torch", "transformers")

    def __init__(self, api: CudaAPI | None = None, nvml: Nvml | None = None) -> None:
        self._api, self._nvml = api, nvml

    @property
    def api(self) -> CudaAPI:
        if self._api is None:
            import torch
            api: CudaAPI = torch.cuda
            self._api = api
        return self._api

    def check(self, hw: HardwareProfile) -> None:
        if not self.api.is_available():
            raise InputError(f"profile '{hw.name}' needs CUDA device '{hw.device}', but torch "
                             "sees no GPU here (CPU-only torch build or no driver); use a CPU "
                             "profile or run on a machine with an NVIDIA GPU")
        index = int(hw.device.split(":")[1])
        if index >= self.api.device_count():
            raise InputError(f"profile '{hw.name}': device '{hw.device}' does not exist; this "
                             f"machine has {self.api.device_count()} GPU(s)")
        self.nvml()

    def nvml(self) -> Nvml:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                raise MissingDependencyError("nvidia-ml-py", "GPU telemetry (NVML)",
                                             "pip install nvidia-ml-py") from None
            nvml: Nvml = pynvml
            self._nvml = nvml
        return self._nvml

    def setup(self, hw: HardwareProfile) -> None:
        self.api.set_device(int(hw.device.split(":")[1]))

    def device_for(self, hw: HardwareProfile) -> str:
        return str(getattr(self.api, "torch_device", hw.device))

    def prepare(self, program: Program, hw: HardwareProfile) -> CudaEventTimer:
        import copy

        import torch

        dtype = torch_dtype(hw.dtype)
        device = self.device_for(hw)
        try:
            module = copy.deepcopy(program.module).to(device=device, dtype=dtype)
            inputs = cast_inputs(program.inputs, dtype, device)
        except torch.cuda.OutOfMemoryError as e:
            raise OutOfMemory(str(e)) from None

        def run() -> None:
            with torch.inference_mode():
                module(*inputs)

        return CudaEventTimer(self.api, run, keep=(module, inputs))

    def telemetry(self, hw: HardwareProfile) -> Telemetry:
        from hwnas.hw_profiles.fingerprint import gpu_state

        nv = self.nvml()
        nv.nvmlInit()
        handle = nv.nvmlDeviceGetHandleByIndex(int(hw.device.split(":")[1]))
        return dict(gpu_state(nv, handle))

    def cache_bytes(self, hw: HardwareProfile) -> int:
        """The GPU's L2 (torch reports it; 50 MiB, an H100's, when it does not)."""
        props = self.api.get_device_properties(int(hw.device.split(":")[1]))
        return int(getattr(props, "L2_cache_size", 0) or DEFAULT_GPU_CACHE)
