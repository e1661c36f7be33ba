"""What one super-network training step costs, before and after the step's speed-ups.

Each configuration runs in its own process (the allocator setting is process-wide and cannot
be taken back), interleaved A B C D A B C D, on the same model, batch and sandwich:
- `baseline`: KL by two log-softmaxes per student, the C allocator as it comes;
- `kd`: the teacher's distribution once per micro-batch, the student's KL by one dot product
  and one log-sum-exp (`hwnas.supernet.train.loop.kd_loss`);
- `alloc`: the allocator keeps freed memory (`hwnas.supernet.train.allocator`);
- `both`: what `hwnas supernet train` does now.
Prints each configuration's median seconds per step (steps after the first), its share of
system (kernel) time, and its speed-up over `baseline`.

    .venv/bin/python benchmarks/bench_supernet_step.py --rounds 2 --steps 4 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CONFIGS = ("baseline", "kd", "alloc", "both")


def worker(config: str, steps: int, batch: int, seq_len: int) -> dict[str, object]:
    import os
    import time

    from hwnas.supernet.train.allocator import reuse_freed_memory

    if config in ("alloc", "both"):
        reuse_freed_memory()
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F

    from hwnas.supernet.supernet import Supernet
    from hwnas.supernet.train.loop import kd_loss, teacher_targets
    from hwnas.supernet.train.sampler import BandSampler, proxy_cost
    from hwnas.supernet.train.view import subnet_view

    def old_kd(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        s_logp = F.log_softmax(student.float(), dim=-1)
        t_logp = F.log_softmax(teacher.float(), dim=-1)
        return (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()

    sn = Supernet.load("smollm2-135m")
    teacher = sn.model.eval().requires_grad_(False)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    student.config.use_cache = False
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, sn.arch.vocab_size, (batch, seq_len), generator=gen)
    specs = BandSampler(sn.space, (1.2, 1.8), proxy_cost(sn.space)).sandwich(
        np.random.default_rng(0), 1)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-5)
    times, sys_times = [], []
    for _ in range(steps):
        t0, s0 = time.perf_counter(), os.times().system
        with torch.no_grad(), autocast:
            t_logits = teacher(ids, use_cache=False).logits
            target = teacher_targets(t_logits, 1.0) if config in ("kd", "both") else None
        for spec in specs:
            with subnet_view(student, sn.arch, sn.importance, spec) as m, autocast:
                logits = m(ids, use_cache=False).logits
            loss = kd_loss(logits, target) if target is not None else old_kd(logits, t_logits)
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        sys_times.append(os.times().system - s0)
    return {"config": config, "step_s": times, "sys_s": sys_times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.batch, args.seq_len)))
        return
    runs: dict[str, list[dict[str, object]]] = {c: [] for c in CONFIGS}
    for r in range(args.rounds):
        for c in CONFIGS:
            out = subprocess.run([sys.executable, __file__, "--worker", c, "--steps",
                                  str(args.steps), "--batch", str(args.batch), "--seq-len",
                                  str(args.seq_len)], check=True, capture_output=True, text=True)
            runs[c].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {c}: {[round(t, 2) for t in runs[c][-1]['step_s']]}",
                  flush=True)
    summary = {}
    for c in CONFIGS:
        steady = [t for run in runs[c] for t in run["step_s"][1:]]  # type: ignore[index]
        sys_s = [t for run in runs[c] for t in run["sys_s"][1:]]  # type: ignore[index]
        summary[c] = {"median_step_s": statistics.median(steady),
                      "sys_share": sum(sys_s) / sum(steady)}
    base = summary["baseline"]["median_step_s"]
    tokens = args.batch * args.seq_len
    print(f"{'config':10} {'s/step':>7} {'tokens/s':>9} {'kernel':>7} {'speed-up':>8}")
    for c, s in summary.items():
        s["speedup"] = base / s["median_step_s"]
        print(f"{c:10} {s['median_step_s']:7.2f} {tokens / s['median_step_s']:9.0f} "
              f"{s['sys_share']:7.0%} {s['speedup']:7.2f}x")
    if args.json:
        settings = {k: str(v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": settings, "summary": summary, "runs": runs},
                                        indent=1))


if __name__ == "__main__":
    main()
