"""Which quality signal on a few items ranks subnets as their full-split accuracy does (issue 13)?

For `--subnets` subnets spread over the space (fixed seed) and the full model, on each task:
accuracy on all items (the truth, or the first `--full-limit`), and, on the search's seeded
sample of `--limit` items, plain accuracy and the gold choice's mean probability
(`gold_prob`). It prints each signal's Spearman against the truth, with a bootstrap 95%
interval over subnets. Every evaluation is cached in the store, so a re-run is free and an
interrupted one resumes.

    nice -n 10 .venv/bin/python benchmarks/bench_quality_objective.py --tasks piqa,arc_easy \
        --subnets 40 --limit 100 --out /tmp/hwnas-bench-quality
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from hwnas.evaluation import evaluate, from_supernet
from hwnas.search.quality import ITEM_SEED
from hwnas.store import open_store
from hwnas.supernet.supernet import Supernet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", default="piqa,arc_easy")
    ap.add_argument("--subnets", type=int, default=40)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--full-limit", type=int, default=None, help="items for the truth "
                    "(default: the whole split)")
    ap.add_argument("--max-level", type=float, default=0.6,
                    help="compression levels drawn from 0..this (graded sampling)")
    ap.add_argument("--repair", default="none")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/hwnas-bench-quality"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sn = Supernet.load(a.model)
    rng = np.random.default_rng(a.seed)
    levels = np.linspace(0.02, a.max_level, a.subnets)
    specs = [sn.space.sample_graded(rng, float(lv)) for lv in levels]
    tasks = a.tasks.split(",")
    rows: list[dict[str, object]] = []
    start = time.time()
    with open_store() as store:
        for i, spec in enumerate(specs):
            target = from_supernet(sn, spec, a.repair)
            few = evaluate(target, None, tasks, limit=a.limit, seed=ITEM_SEED, store=store)
            full = evaluate(target, None, tasks, limit=a.full_limit,
                            seed=None if a.full_limit is None else ITEM_SEED, store=store)
            row: dict[str, object] = {"subnet": spec.key(), "level": float(levels[i])}
            for t in tasks:
                g = few[t].extra.get("gold_prob")
                row[t] = {"truth": full[t].score, "n_truth": full[t].n, "acc": few[t].score,
                          "gold_prob": float(g["value"]) if isinstance(g, dict) else None}
            rows.append(row)
            print(f"[{time.time() - start:6.0f} s] {i + 1}/{len(specs)} {spec.key()}",
                  flush=True)
    result: dict[str, object] = {"settings": vars(a) | {"out": str(a.out)}, "rows": rows,
                                 "spearman": {}}
    boot = np.random.default_rng(0)
    warnings.filterwarnings("ignore", message="An input array is constant")  # tiny resamples
    for t in tasks:
        truth = np.array([r[t]["truth"] for r in rows])  # type: ignore[index]
        res = {}
        for signal in ("acc", "gold_prob"):
            x = np.array([r[t][signal] for r in rows], dtype=float)  # type: ignore[index]
            rho = float(spearmanr(x, truth).statistic)
            bs = []
            for _ in range(1000):
                idx = boot.integers(0, len(x), len(x))
                bs.append(float(spearmanr(x[idx], truth[idx]).statistic))
            res[signal] = {"spearman": rho, "ci95": [float(np.nanpercentile(bs, 2.5)),
                                                     float(np.nanpercentile(bs, 97.5))]}
        result["spearman"][t] = res  # type: ignore[index]
    (a.out / "quality_objective.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result["spearman"], indent=1))


if __name__ == "__main__":
    main()
