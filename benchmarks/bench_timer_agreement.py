"""Agreement of hwnas's adaptive timer with torch.utils.benchmark (the trusted timer).

Five SmolLM2-shaped decoder-layer variants (MLP width x KV groups), random weights, torch
fp32 on the CPU. In ONE process, for several rounds, hwnas measures all five interleaved
(its normal protocol: `measure_group`), then `torch.utils.benchmark.Timer.blocked_autorange`
measures each one. Per variant, the median over rounds of each timer's median is compared.
Acceptance: every variant within 5%.

    flock /tmp/hwnas-timing.lock .venv/bin/python benchmarks/bench_timer_agreement.py
    [--threads 2] [--rounds 5] [--workload prefill@128|decode@144]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.utils.benchmark as tub

from hwnas.hw_profiles import load_profile
from hwnas.hw_profiles.workload import Workload
from hwnas.profilers.backends.torch_cpu import TorchCPU
from hwnas.profilers.jobs import base_spec
from hwnas.profilers.programs import build_layer, layer_program
from hwnas.profilers.shape import ModelShape
from hwnas.profilers.timer import measure_group

VARIANTS = [(768, 1), (960, 2), (1152, 3), (1344, 1), (1536, 3)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workload", default="prefill@128")
    ap.add_argument("--model", default="smollm2-135m")
    args = ap.parse_args()

    phase, n = args.workload.split("@")
    w = Workload.prefill(int(n)) if phase == "prefill" else Workload.decode(int(n))
    hw = load_profile("cpu-torch-fp32").model_copy(update={"threads": args.threads})
    shape = ModelShape.load(args.model)
    backend = TorchCPU()
    backend.setup(hw)
    runnables, fns = [], []
    for width, kv in VARIANTS:
        cfg = shape.layer_config(width, kv)
        spec = base_spec(hw, shape.arch, "layer", w, width=width, kv_heads=kv)
        prog = layer_program(shape.arch, cfg, build_layer(shape.arch, cfg), spec)
        r = backend.prepare(prog, hw)
        runnables.append(r)
        fns.append(r.fn)

    ours: list[list[float]] = [[] for _ in VARIANTS]
    theirs: list[list[float]] = [[] for _ in VARIANTS]
    t0 = time.monotonic()
    for _ in range(args.rounds):
        for i, t in enumerate(measure_group(runnables, hw.timer)):
            ours[i].append(statistics.median(t.times_ms))
        for i, fn in enumerate(fns):
            m = tub.Timer(stmt="fn()", globals={"fn": fn},
                          num_threads=args.threads).blocked_autorange(min_run_time=0.3)
            theirs[i].append(m.median * 1000.0)

    rows = []
    for (width, kv), a, b in zip(VARIANTS, ours, theirs, strict=True):
        ma, mb = statistics.median(a), statistics.median(b)
        rows.append({"width": width, "kv_heads": kv, "hwnas_ms": round(ma, 4),
                     "torch_benchmark_ms": round(mb, 4), "ratio": round(ma / mb, 4)})
    worst = max(abs(r["ratio"] - 1) for r in rows)
    result = {"workload": args.workload, "threads": args.threads, "rounds": args.rounds,
              "model_shape": args.model, "load_avg": os.getloadavg(),
              "seconds": round(time.monotonic() - t0, 1), "variants": rows,
              "worst_abs_deviation": round(worst, 4), "within_5pct": worst <= 0.05}
    print(json.dumps(result, indent=2))
    torch.set_num_threads(args.threads)
    return 0 if worst <= 0.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
