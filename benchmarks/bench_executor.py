"""Evaluation throughput on a local Dask cluster: 2 workers against 1, in the same run.

`nice -n 10 .venv/bin/python benchmarks/bench_executor.py --subnets 4 --limit 24`

The same seeded subnets of the embedded model are scored on the same PIQA items (no cache)
by a LocalCluster of 1 worker, then of 2 (each worker uses its share of the cores). Each
cluster first loads the model on every worker (not timed). Prints items/s for both, their
ratio, and whether both gave the same per-item choices.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="piqa")
    ap.add_argument("--subnets", type=int, default=4)
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np

    from hwnas.evaluation import from_supernet
    from hwnas.evaluation.scaleout import evaluate_many, named_target
    from hwnas.executors import ExecutorSpec, Job, open_executor
    from hwnas.search.problem import initial_population
    from hwnas.supernet.cached import loaded_supernet

    sn = loaded_supernet(args.model, "fp32")
    specs = initial_population(sn.space, np.random.default_rng(args.seed), args.subnets, set())
    targets = [named_target(args.model, s, "fp32", from_supernet(sn, s)) for s in specs]
    out: dict[str, object] = {"model": args.model, "task": args.task, "subnets": len(specs),
                              "items_per_subnet": args.limit}
    preds = {}
    for n in (1, 2):
        with open_executor(ExecutorSpec("dask", workers=n)) as ex:
            warm = [Job(f"warm{i}", loaded_supernet, (args.model, "fp32")) for i in range(n)]
            ex.map(warm)  # may land twice on one worker; the first timed job loads otherwise
            t0 = time.perf_counter()
            got = evaluate_many(targets, [args.task], ex, limit=args.limit, seed=0)
            dt = time.perf_counter() - t0
        items = sum(r[args.task].n for r in got if isinstance(r, dict))
        out[f"workers_{n}"] = {"seconds": round(dt, 2), "items_per_s": round(items / dt, 3)}
        preds[n] = [r[args.task].predictions for r in got if isinstance(r, dict)]
    w1, w2 = out["workers_1"], out["workers_2"]
    assert isinstance(w1, dict) and isinstance(w2, dict)
    out["ratio_2_over_1"] = round(w2["items_per_s"] / w1["items_per_s"], 3)
    out["same_predictions"] = preds[1] == preds[2]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
