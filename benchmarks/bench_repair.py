"""Training-free repair: held-out perplexity of 20 random subnets with and without it.

The subnets are spread over the space by compression level (`SearchSpace.sample_graded`,
levels evenly from 0.05 to 0.8, fixed seed). Perplexity is on LAMBADA passages (the held-out
text, never used to calibrate or train), the first `--tokens` tokens of `heldout_text()`.
The repair is calibrated on `--calib-tokens` tokens of the bundled CoQA/SQuAD/DROP passages
(one pass of the full model for all 20 subnets). Prints a table, then a JSON summary.

    nice -n 10 .venv/bin/python benchmarks/bench_repair.py [--tokens 4096] [--calib-tokens 16384]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from hwnas.datasets.text import heldout_text
from hwnas.evaluation.perplexity import perplexity
from hwnas.supernet import repair as R
from hwnas.supernet.extract import build
from hwnas.supernet.space import SearchSpace, SubnetSpec
from hwnas.supernet.supernet import Supernet
from hwnas.supernet.train.sampler import proxy_cost


def bench_specs(space: SearchSpace, n: int = 20, seed: int = 0) -> list[SubnetSpec]:
    rng = np.random.default_rng(seed)
    return [space.sample_graded(rng, float(level)) for level in np.linspace(0.05, 0.8, n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--subnets", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=4096, help="held-out tokens per perplexity")
    ap.add_argument("--calib-tokens", type=int, default=R.RepairConfig().tokens)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    sn = Supernet.load(args.model)
    specs = bench_specs(sn.space, args.subnets, args.seed)
    cfg = R.RepairConfig(tokens=args.calib_tokens)
    text = heldout_text()
    cost = proxy_cost(sn.space)
    full_cost = cost(sn.space.full())
    t1 = time.perf_counter()
    deltas = R.repair_many(sn, specs, cfg)
    calib_s = time.perf_counter() - t1
    full = perplexity(sn.model, sn.tokenizer, text, max_tokens=args.tokens)
    rows: list[dict[str, object]] = []
    ppl_none: list[float] = []
    ppl_ls: list[float] = []
    print(f"{'#':>2} {'layers':>6} {'speedup':>7} {'ppl none':>9} {'ppl ls':>9} {'gain':>6}")
    for i, (spec, d) in enumerate(zip(specs, deltas, strict=True)):
        model = build(sn.model, sn.arch, sn.importance, spec)
        none = perplexity(model, sn.tokenizer, text, max_tokens=args.tokens)
        R.apply_deltas(model, d)
        ls = perplexity(model, sn.tokenizer, text, max_tokens=args.tokens)
        speed = full_cost / cost(spec)
        ppl_none.append(none)
        ppl_ls.append(ls)
        rows.append({"key": spec.key(), "subnet": spec.to_dict(), "layers": spec.num_layers,
                     "proxy_speedup": speed, "ppl_none": none, "ppl_ls": ls})
        print(f"{i:>2} {spec.num_layers:>6} {speed:>7.2f} {none:>9.2f} {ls:>9.2f} "
              f"{none / ls:>6.2f}", flush=True)
    gap_none = [math.log(p / full) for p in ppl_none]
    gap_ls = [math.log(p / full) for p in ppl_ls]
    summary = {
        "model": args.model, "fingerprint": sn.fingerprint, "subnets": len(rows),
        "seed": args.seed, "heldout_tokens": args.tokens, "calibration_tokens": args.calib_tokens,
        "repair_config": cfg.__dict__, "repair_key": cfg.key(), "full_ppl": full,
        "mean_logppl_gap_none": float(np.mean(gap_none)),
        "mean_logppl_gap_ls": float(np.mean(gap_ls)),
        "gap_shrink": 1 - float(np.mean(gap_ls)) / float(np.mean(gap_none)),
        "median_ppl_none": float(np.median(ppl_none)),
        "median_ppl_ls": float(np.median(ppl_ls)),
        "repair_better": int(sum(b < a for a, b in zip(ppl_none, ppl_ls, strict=True))),
        "calibration_seconds": calib_s, "seconds": time.perf_counter() - t0, "rows": rows}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
