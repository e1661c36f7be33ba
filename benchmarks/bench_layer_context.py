"""Layers timed alone against layers timed in context, against the whole subnet.

The layer-composed predictor sums per-layer latencies. Each layer record used to be timed
alone: one decoder layer called again and again on the same input, so its weights (about
14 MB in fp32 for a SmolLM2 layer) stay in the last-level cache between calls. Inside the
model each layer's weights are evicted by the other layers' before they are used again.

This benchmark times, in ONE process and interleaved (`measure_group`):
- every (width, KV) layer variant alone (the old protocol);
- the same variant as a chain of `k` layers with distinct weights, each feeding the next,
  whose weights together exceed the last-level cache (in context, as nn-Meter argues);
- the embedding and the head;
- whole subnets (the full model and graded random ones).

and prints, per workload, how far the composed sums are from the whole-subnet times:

    .venv/bin/python benchmarks/bench_layer_context.py [--subnets 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hwnas.hw_profiles import load_profile
from hwnas.hw_profiles.workload import Workload
from hwnas.profilers import programs
from hwnas.profilers.backends.base import cpu_cache_bytes
from hwnas.profilers.backends.torch_cpu import TorchCPU
from hwnas.profilers.jobs import base_spec
from hwnas.profilers.timer import PerUnit, measure_group


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subnets", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workloads", default="prefill@128,decode@144")
    ap.add_argument("--json")
    args = ap.parse_args()

    from hwnas.supernet.supernet import Supernet

    hw = load_profile("cpu-torch-fp32").model_copy(update={"threads": args.threads})
    sn = Supernet.load("smollm2-135m", dtype="fp32")
    backend = TorchCPU()
    backend.setup(hw)
    rng = np.random.default_rng(args.seed)
    specs = [sn.space.full()] + [sn.space.sample_graded(rng, float(lv))
                                 for lv in np.linspace(0.15, 0.9, args.subnets - 1)]
    variants = sorted({(w, kv) for s in specs
                       for w, kv in zip(s.intermediate_size, s.kv_heads, strict=True)})
    llc = cpu_cache_bytes()
    out: dict[str, object] = {"llc_bytes": llc, "threads": args.threads, "workloads": {}}
    print(f"LLC {llc / 2**20:.0f} MiB, {len(variants)} layer variants, {len(specs)} subnets")
    for wname in args.workloads.split(","):
        phase, n = wname.split("@")
        w = Workload.prefill(int(n)) if phase == "prefill" else Workload.decode(int(n))
        runnables, labels = [], []
        for width, kv in variants:
            cfg = sn.layer_config(width, kv)
            spec = base_spec(hw, sn.arch, "layer", w, width=width, kv_heads=kv)
            layer = programs.build_layer(sn.arch, cfg)
            prog = programs.layer_program(sn.arch, cfg, layer, spec)
            runnables.append(backend.prepare(prog, hw))
            labels.append(("iso", width, kv))
            nbytes = sum(p.numel() * 4 for p in layer.parameters())
            k = max(2, -(-2 * llc // nbytes))
            steps = [programs.build_layer(sn.arch, cfg, seed=i) for i in range(k)]
            chain = programs.layer_program(sn.arch, cfg, steps, spec)  # what profiles run
            runnables.append(PerUnit(backend.prepare(chain, hw), k))
            labels.append(("chain", width, kv))
        for kind in ("embed", "head"):
            spec = base_spec(hw, sn.arch, kind, w)
            prog = (programs.embed_program if kind == "embed" else programs.head_program)(
                sn.arch, sn.config, spec)
            runnables.append(backend.prepare(prog, hw))
            labels.append((kind, 0, 0))
        for i, s in enumerate(specs):
            spec = base_spec(hw, sn.arch, "subnet", w, subnet=s.to_json())
            prog = programs.subnet_program(sn.extract(s), sn.arch, s.kv_heads, spec)
            runnables.append(backend.prepare(prog, hw))
            labels.append(("subnet", i, 0))
        t0 = time.monotonic()
        timed = measure_group(runnables, hw.timer)
        res: dict[str, object] = {"timing_s": round(time.monotonic() - t0, 1)}
        for stat in ("min", "median"):
            f = min if stat == "min" else (lambda t: float(np.median(t)))
            ms = {lab: f(t.times_ms) for lab, t in zip(labels, timed, strict=True)}
            fixed = ms[("embed", 0, 0)] + ms[("head", 0, 0)]
            rows = []
            for i, s in enumerate(specs):
                meas = ms[("subnet", i, 0)]
                pair = list(zip(s.intermediate_size, s.kv_heads, strict=True))
                iso = fixed + sum(ms[("iso", a, b)] for a, b in pair)
                ch = fixed + sum(ms[("chain", a, b)] for a, b in pair)
                rows.append({"layers": s.num_layers, "measured": meas,
                             "iso_err": iso / meas - 1, "chain_err": ch / meas - 1})
            iso_e = np.array([r["iso_err"] for r in rows])
            ch_e = np.array([r["chain_err"] for r in rows])
            res[stat] = {"rows": rows,
                         "iso_mape": float(np.mean(abs(iso_e))),
                         "chain_mape": float(np.mean(abs(ch_e))),
                         "iso_within10": float(np.mean(abs(iso_e) <= 0.1)),
                         "chain_within10": float(np.mean(abs(ch_e) <= 0.1)),
                         "chain_over_iso": {f"{a}/{b}": ms[("chain", a, b)] / ms[("iso", a, b)]
                                            for a, b in variants}}
            print(f"{wname} [{stat}]  alone: MAPE {res[stat]['iso_mape']:.1%} "
                  f"(mean err {iso_e.mean():+.1%})   in context: MAPE "
                  f"{res[stat]['chain_mape']:.1%} (mean err {ch_e.mean():+.1%})")
            for r in rows:
                print(f"   {r['layers']:2d} layers  measured {r['measured']:8.2f} ms  "
                      f"alone {r['iso_err']:+6.1%}  in context {r['chain_err']:+6.1%}")
        out["workloads"][wname] = res  # type: ignore[index]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
