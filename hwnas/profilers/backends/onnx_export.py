"""Export a `Program` to ONNX with the dynamo exporter (shared by onnxruntime and openvino).

Shapes are static: one graph per program (layer variant x workload), with the past keys and
values as graph inputs for decode. The legacy TorchScript exporter fails on whole LLaMA
models (`aten::diff`); the dynamo one (`torch.onnx.export(..., dynamo=True)`) does not.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from hwnas.errors import MissingDependencyError
from hwnas.profilers.backends.base import BackendError
from hwnas.profilers.programs import Program

if TYPE_CHECKING:
    import numpy as np


def require(module: str, dist: str, purpose: str) -> ModuleType:
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(dist, purpose, f"pip install {dist}") from None


def export_onnx(program: Program, path: Path) -> Path:
    """Write `program` as an ONNX file at `path` (weights inline; one file)."""
    import torch

    require("onnxscript", "onnxscript", "ONNX export (dynamo exporter)")
    require("onnx", "onnx", "ONNX export")
    sink = io.StringIO()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            torch.onnx.export(program.module, program.inputs, str(path), dynamo=True,
                              input_names=list(program.input_names),
                              output_names=list(program.output_names),
                              external_data=False, optimize=True, verbose=False)
    except Exception as e:  # the exporter raises many types; report one clear error
        raise BackendError(f"ONNX export of {program.spec.target} "
                           f"{program.spec.phase} failed: {type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}") from e
    finally:
        quiet.setLevel(level)
    return path


def numpy_feeds(program: Program) -> dict[str, np.ndarray]:
    return {n: t.numpy() for n, t in zip(program.input_names, program.inputs, strict=True)}
