"""ONNX Runtime on the CPU, with the execution provider named explicitly.

Programs are exported with the dynamo exporter to a temporary file, loaded into an
`InferenceSession` (CPUExecutionProvider only, intra-op threads = the profile's threads,
one inter-op thread, every graph optimisation) and the file is removed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import InputError
from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.profilers.backends.base import CpuDevice, WallClock, set_torch_threads, threads_for
from hwnas.profilers.backends.onnx_export import export_onnx, numpy_feeds, require
from hwnas.profilers.programs import Program

if TYPE_CHECKING:
    import onnxruntime

PROVIDERS = ["CPUExecutionProvider"]


_POOL: list[int] = []  # the size of this process's global ORT thread pool, once created


def shared_pool(threads: int) -> bool:
    """Create (once per process) ONNX Runtime's global intra-op thread pool of `threads`
    threads; False when the process already has one of another size (then sessions keep
    their own pools)."""
    if not _POOL:
        import onnxruntime as ort

        ort.set_global_thread_pool_sizes(threads, 1)
        _POOL.append(threads)
    return _POOL[0] == threads


class OnnxRuntime(CpuDevice):
    name = "onnxruntime"
    libraries = ("torch", "transformers", "onnxruntime")

    def check(self, hw: HardwareProfile) -> None:
        ort = require("onnxruntime", "onnxruntime", "the onnxruntime backend")
        require("onnxscript", "onnxscript", "ONNX export for the onnxruntime backend")
        missing = [p for p in PROVIDERS if p not in ort.get_available_providers()]
        if missing:
            raise InputError(f"profile '{hw.name}': onnxruntime lacks provider(s) {missing}; "
                             f"available: {ort.get_available_providers()}")

    def setup(self, hw: HardwareProfile) -> None:
        set_torch_threads(hw)  # for the export
        shared_pool(threads_for(hw))

    def session(self, path: Path, hw: HardwareProfile) -> onnxruntime.InferenceSession:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if shared_pool(threads_for(hw)):
            # every session of a timed group runs on one pool: an idle session's threads
            # spinning after its run would otherwise compete with the next session's run
            opts.use_per_session_threads = False
        else:
            opts.intra_op_num_threads = threads_for(hw)
            opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), sess_options=opts, providers=PROVIDERS)

    def prepare(self, program: Program, hw: HardwareProfile) -> WallClock:
        with tempfile.TemporaryDirectory(prefix="hwnas-ort-") as tmp:
            path = export_onnx(program, Path(tmp) / "program.onnx")
            sess = self.session(path, hw)
        feeds = numpy_feeds(program)
        sess.run(None, feeds)  # fail here, not inside the timer
        return WallClock(lambda: sess.run(None, feeds), keep=sess)
