"""Eager PyTorch on the CPU: fp32, bf16, fp16, and int8 through dynamic quantization.

int8 is real: `torch.ao.quantization.quantize_dynamic` swaps every `nn.Linear` for a
dynamically quantized one (int8 weights, activations quantized per call) that runs the
`quantized::linear_dynamic` kernels; `prepare` refuses a module where nothing was swapped,
so a program is never timed in fp32 under an int8 label.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING

from hwnas.errors import InputError
from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import (
    CpuDevice,
    WallClock,
    cast_inputs,
    set_torch_threads,
    torch_dtype,
)
from hwnas.profilers.programs import Program

if TYPE_CHECKING:
    import torch
    from torch import nn


def quantize_int8(module: nn.Module) -> nn.Module:
    """Dynamic int8 quantization of every Linear; returns the new module."""
    import torch
    from torch import nn

    engines = torch.backends.quantized.supported_engines
    for engine in ("onednn", "x86", "fbgemm"):
        if engine in engines:
            torch.backends.quantized.engine = engine
            break
    with warnings.catch_warnings():  # torch 2.13 deprecates torch.ao (kernels still real)
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(module), {nn.Linear},
                                                  dtype=torch.qint8)
    return q


def count_int8_linears(module: nn.Module) -> int:
    from torch.ao.nn.quantized.dynamic import Linear as DynLinear
    return sum(isinstance(m, DynLinear) for m in module.modules())


class TorchCPU(CpuDevice):
    name = "torch"
    libraries = ("torch", "transformers")

    def check(self, hw: HardwareProfile) -> None:
        if hw.device != "cpu":
            raise InputError(f"profile '{hw.name}': backend torch-cpu got device '{hw.device}'")

    def setup(self, hw: HardwareProfile) -> None:
        set_torch_threads(hw)

    def convert(self, program: Program,
                hw: HardwareProfile) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        """The module and inputs as this backend runs them (dtype, quantization)."""
        module = program.module
        if hw.dtype == "int8":
            has_linear = any(type(m).__name__ == "Linear" for m in module.modules())
            if has_linear:
                module = quantize_int8(module)
                if count_int8_linears(module) == 0:
                    raise InputError("int8: quantize_dynamic swapped no Linear layer; "
                                     "refusing to time fp32 kernels as int8")
            return module, program.inputs
        import torch

        dtype = torch_dtype(hw.dtype)
        if dtype != torch.float32:  # .to() is in place: keep the caller's fp32 module intact
            module = copy.deepcopy(module).to(dtype)
        return module, cast_inputs(program.inputs, dtype)

    def prepare(self, program: Program, hw: HardwareProfile) -> WallClock:
        import torch

        module, inputs = self.convert(program, hw)

        def run() -> None:
            with torch.inference_mode():
                module(*inputs)

        return WallClock(run, keep=module)
