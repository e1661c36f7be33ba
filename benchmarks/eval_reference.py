"""Reference accuracy of the embedded full model (SmolLM2-135M, fp32, zero-shot) on the full
validation splits of the bundled benchmarks (HellaSwag: its first 2,000 items unless
--hellaswag-items says otherwise), with standard errors, as a Markdown table.

Results go to the default store (so a re-run, or a killed run, resumes task by task and costs
nothing for tasks already done). Long: run it niced, in the background:

    nice -n 10 .venv/bin/python benchmarks/eval_reference.py > /tmp/eval_reference.log 2>&1 &
"""

from __future__ import annotations

import argparse
import math
import sys
import time

TASKS = ["arc_easy", "arc_challenge", "piqa", "hellaswag", "winogrande", "mmlu"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--hellaswag-items", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from hwnas.evaluation import evaluate
    from hwnas.evaluation.target import from_name
    from hwnas.store import open_store

    torch.set_num_threads(args.threads)
    target = from_name("smollm2-135m", None, "fp32")
    rows = []
    with open_store() as store:
        for task in args.tasks.split(","):
            limit = args.hellaswag_items if task == "hellaswag" else None
            t = time.perf_counter()
            r = evaluate(target, None, [task], limit=limit, store=store,
                         precision="exact")[task]
            print(f"{task}: {r.metric} {r.score:.4f} ± {r.stderr:.4f} (n={r.n}, "
                  f"{time.perf_counter() - t:.0f} s{', cached' if r.extra.get('cached') else ''})",
                  file=sys.stderr, flush=True)
            rows.append(r)
    print(f"SmolLM2-135M (fp32, zero-shot, model {target.fingerprint}), hwnas evaluator "
          f"v{rows[0].evaluator_version}; ± is the standard error.\n")
    print("| task | split | n | headline | acc | acc_norm | items/s |")
    print("|---|---|---:|---|---:|---:|---:|")
    for r in rows:
        m = r.extra.get("metrics", {})

        def fmt(name: str, m: dict = m) -> str:
            if name not in m:
                return "-"
            v = m[name]
            err = "" if not math.isfinite(v["stderr"]) else f" ± {v['stderr']:.4f}"
            return f"{v['accuracy']:.4f}{err}"

        split = r.extra.get("split", "")
        if r.n < r.extra.get("total", r.n):
            split += f" (first {r.n} of {r.extra['total']})"
        print(f"| {r.task} | {split} | {r.n} | {r.metric} | {fmt('acc')} | {fmt('acc_norm')} | "
              f"{r.extra.get('items_per_s', float('nan')):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
