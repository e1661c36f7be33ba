"""Intel Extension for PyTorch on the CPU (optional).

IPEX 2.8 is the last release and imports only with torch 2.8, so it lives in its own
environment (README, "Optional: IPEX"). `check` imports it and turns every failure into one
clear message; programs run through `ipex.optimize` in the profile's dtype.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import NoReturn

from hwnas.errors import InputError, MissingDependencyError
from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import (
    CpuDevice,
    WallClock,
    cast_inputs,
    set_torch_threads,
    torch_dtype,
)
from hwnas.profilers.programs import Program

INSTALL = ("a separate virtualenv with: pip install torch==2.8.0 "
           "intel-extension-for-pytorch==2.8.0 and hwnas (see README, 'Optional: IPEX')")


def _transformers5_shim() -> None:
    """IPEX 2.8's LLM reference code imports `transformers.modeling_attn_mask_utils`, which
    transformers 5 removed, so `import intel_extension_for_pytorch` fails with hwnas's
    transformers. hwnas uses only `ipex.optimize`; stand-ins that refuse to run let the
    import finish without changing any kernel IPEX uses."""
    import sys
    import types

    name = "transformers.modeling_attn_mask_utils"
    if name in sys.modules or importlib.util.find_spec("transformers") is None:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        mod = types.ModuleType(name)

        def _removed(*args: object, **kwargs: object) -> NoReturn:
            raise NotImplementedError(f"{name} was removed in transformers 5")

        mod._prepare_4d_causal_attention_mask = _removed  # type: ignore[attr-defined]
        mod._prepare_4d_attention_mask = _removed  # type: ignore[attr-defined]
        sys.modules[name] = mod


def import_ipex() -> ModuleType:
    if importlib.util.find_spec("intel_extension_for_pytorch") is None:
        raise MissingDependencyError("intel-extension-for-pytorch", "the ipex backend", INSTALL)
    _transformers5_shim()
    try:
        import intel_extension_for_pytorch as ipex
    except Exception as e:  # IPEX raises on a torch version it was not built for
        import torch
        raise InputError(f"intel-extension-for-pytorch is installed but does not import with "
                         f"torch {torch.__version__} ({type(e).__name__}: {e}); it needs "
                         f"its matching torch: use {INSTALL}") from None
    return ipex


class IPEX(CpuDevice):
    name = "ipex"
    libraries = ("torch", "transformers", "intel-extension-for-pytorch")

    def check(self, hw: HardwareProfile) -> None:
        import_ipex()

    def setup(self, hw: HardwareProfile) -> None:
        set_torch_threads(hw)

    def prepare(self, program: Program, hw: HardwareProfile) -> WallClock:
        import copy

        import torch

        ipex = import_ipex()
        dtype = torch_dtype(hw.dtype)
        # cast every parameter first: ipex.optimize converts only the module types it knows,
        # and an fp32 RMSNorm weight would feed fp32 into its bf16 linear kernels
        module = ipex.optimize(copy.deepcopy(program.module).to(dtype).eval(), dtype=dtype)
        inputs = cast_inputs(program.inputs, dtype)

        def run() -> None:
            with torch.inference_mode():
                module(*inputs)

        return WallClock(run, keep=module)
