"""Every CPU backend on real SmolLM2-shaped layers, side by side in one process.

For a few layer variants at the primary workloads (prefill@128, decode@144), prepares the
program on torch fp32, torch bf16, torch int8 (dynamic quantization, checked to run
`quantized::linear_dynamic`), ONNX Runtime and OpenVINO, then times ALL of them in one
interleaved group (hwnas's adaptive timer), so the ratios share the machine's state.
Also reports the whole-model primary metric latency of the full SmolLM2 per backend when
`--subnet` is given.

    flock /tmp/hwnas-timing.lock .venv/bin/python benchmarks/bench_backends.py [--threads 2]

IPEX (its own torch 2.8 environment, see README "Optional: IPEX"):

    PYTHONPATH=. flock /tmp/hwnas-timing.lock ~/.cache/hwnas/ipex-venv/bin/python \
        benchmarks/bench_backends.py --profiles cpu-torch-bf16,cpu-ipex-bf16,cpu-torch-fp32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from hwnas.hw_profiles import load_profile
from hwnas.hw_profiles.workload import Workload
from hwnas.profilers.backends import backend_for
from hwnas.profilers.backends.torch_cpu import TorchCPU, count_int8_linears
from hwnas.profilers.jobs import base_spec
from hwnas.profilers.programs import build_layer, layer_program
from hwnas.profilers.shape import ModelShape
from hwnas.profilers.timer import measure_group

PROFILES = ["cpu-torch-fp32", "cpu-torch-bf16", "cpu-torch-int8", "cpu-onnxruntime-fp32",
            "cpu-openvino-fp32"]
VARIANTS = [(1536, 3), (768, 1)]
WORKLOADS = [Workload.prefill(128), Workload.decode(144)]


def int8_uses_quantized_kernels(prog) -> bool:
    import torch
    from torch.profiler import ProfilerActivity, profile

    module, inputs = TorchCPU().convert(prog, load_profile("cpu-torch-int8"))
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.inference_mode():
        module(*inputs)
    ops = {e.key for e in prof.key_averages()}
    return count_int8_linears(module) == 7 and "quantized::linear_dynamic" in ops


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--profiles", default=",".join(PROFILES),
                    help="comma-separated; the first is the reference of the ratios")
    args = ap.parse_args()
    profiles = args.profiles.split(",")
    shape = ModelShape.load(args.model)
    labels, runnables = [], []
    t0 = time.monotonic()
    int8_ok = None
    for name in profiles:
        hw = load_profile(name).model_copy(update={"threads": args.threads})
        backend = backend_for(hw)
        backend.setup(hw)
        for width, kv in VARIANTS:
            cfg = shape.layer_config(width, kv)
            layer = build_layer(shape.arch, cfg)
            for w in WORKLOADS:
                spec = base_spec(hw, shape.arch, "layer", w, width=width, kv_heads=kv)
                prog = layer_program(shape.arch, cfg, layer, spec)
                if name == "cpu-torch-int8" and int8_ok is None:
                    int8_ok = int8_uses_quantized_kernels(prog)
                runnables.append(backend.prepare(prog, hw))
                labels.append((name, width, kv, w.name))
    prep_s = time.monotonic() - t0
    hw0 = load_profile(profiles[0])
    settings = hw0.timer.model_copy(update={"max_time_s": 2.0})
    import torch
    torch.set_num_threads(args.threads)
    timed = measure_group(runnables, settings)
    med = {lab: statistics.median(t.times_ms) for lab, t in zip(labels, timed, strict=True)}
    noisy = {lab: t.rel_iqr > settings.noise_threshold for lab, t in zip(labels, timed,
                                                                        strict=True)}
    rows = []
    for (name, width, kv, wl), ms in med.items():
        ref = med[(profiles[0], width, kv, wl)]
        rows.append({"profile": name, "width": width, "kv_heads": kv, "workload": wl,
                     "median_ms": round(ms, 4), f"vs_{profiles[0]}": round(ms / ref, 3),
                     "noisy": noisy[(name, width, kv, wl)]})
    print(json.dumps({"threads": args.threads, "load_avg": os.getloadavg(),
                      "prepare_s": round(prep_s, 1), "int8_runs_quantized_kernels": int8_ok,
                      "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
