"""OpenVINO on the CPU, reading the dynamo exporter's ONNX file.

OpenVINO cannot convert these PyTorch modules directly (`aten::diff` in whole models) but
reads their ONNX export. Inference precision is set explicitly (f32 for fp32 profiles:
otherwise OpenVINO may silently run bf16 on CPUs that have it), with the latency hint and the
profile's thread count.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import CpuDevice, WallClock, set_torch_threads, threads_for
from hwnas.profilers.backends.onnx_export import export_onnx, numpy_feeds, require
from hwnas.profilers.programs import Program

if TYPE_CHECKING:
    import openvino

PRECISION = {"fp32": "f32", "bf16": "bf16"}


class OpenVINO(CpuDevice):
    name = "openvino"
    libraries = ("torch", "transformers", "openvino")

    def check(self, hw: HardwareProfile) -> None:
        require("openvino", "openvino", "the openvino backend")
        require("onnxscript", "onnxscript", "ONNX export for the openvino backend")

    def setup(self, hw: HardwareProfile) -> None:
        set_torch_threads(hw)

    def compile(self, path: Path, hw: HardwareProfile) -> openvino.CompiledModel:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        config = {"INFERENCE_NUM_THREADS": threads_for(hw), "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": PRECISION[hw.dtype], "NUM_STREAMS": 1}
        return core.compile_model(model, "CPU", config)

    def prepare(self, program: Program, hw: HardwareProfile) -> WallClock:
        with tempfile.TemporaryDirectory(prefix="hwnas-ov-") as tmp:
            path = export_onnx(program, Path(tmp) / "program.onnx")
            compiled = self.compile(path, hw)
        request = compiled.create_infer_request()
        feeds = numpy_feeds(program)
        request.infer(feeds)  # fail here, not inside the timer
        return WallClock(lambda: request.infer(feeds), keep=(compiled, request))
