"""PyTorch on an NVIDIA GPU: CUDA events for timing, NVML for telemetry.

Each timed call is bracketed by two CUDA events on the current stream and read after the end
event has synchronised, so the time is the GPU's, not the launch overhead's. NVML telemetry
(clocks, temperature, power, throttle reasons) is sampled before and after each group of
measurements and stored with them. The CUDA API and NVML are injectable so the path is
tested with fakes on machines without a GPU.
"""

from __future__ import annotations

from typing import Any

from hwnas.errors import InputError, MissingDependencyError
from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import OutOfMemory, cast_inputs, torch_dtype
from hwnas.profilers.programs import Program


class CudaEventTimer:
    def __init__(self, api: Any, fn: Any, keep: object = None) -> None:
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

    def __init__(self, api: Any = None, nvml: Any = None) -> None:
        self._api, self._nvml = api, nvml

    @property
    def api(self) -> Any:
        if self._api is None:
            import torch
            self._api = torch.cuda
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

    def nvml(self) -> Any:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                raise MissingDependencyError("nvidia-ml-py", "GPU telemetry (NVML)",
                                             "pip install nvidia-ml-py") from None
            self._nvml = pynvml
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

    def telemetry(self, hw: HardwareProfile) -> dict[str, Any]:
        from hwnas.hw_profiles.fingerprint import gpu_state

        nv = self.nvml()
        nv.nvmlInit()
        handle = nv.nvmlDeviceGetHandleByIndex(int(hw.device.split(":")[1]))
        return dict(gpu_state(nv, handle))
