"""Is there a subnet worth finding near the full model? The structured cuts, scored the way the
demo's final re-measurement scores its front (issue 13's demo line, issue 11's baselines).

For the original weights of `--model`: the k least influential layers dropped (ShortGPT's cut,
by the model's block influence) for each k in `--drops`, and every MLP at one width for each of
`--widths` (all layers kept). Each gets its speed-up predicted by the hardware profile's
trained latency predictor (so run `hwnas demo` or `hwnas predictors train --hw H` first) and
its accuracy on the seeded `--limit` items of each task that the search's real evaluations use
(`--limit 300` are the demo's final items), with the difference to the full model on the same
items and its paired standard error. Every evaluation is cached in the store (a re-run is free).

    .venv/bin/python benchmarks/bench_ranked_cuts.py --tasks piqa --limit 300 --drops 1-8 \
        --widths 1344 --mixed 2:1344 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np

from hwnas.evaluation import evaluate
from hwnas.evaluation.result import EvalResult
from hwnas.pipeline.demo import DEFAULT_HW, profile_for_this_machine
from hwnas.predictors import api
from hwnas.search.quality import ITEM_SEED
from hwnas.store import open_store
from hwnas.supernet.space import SubnetSpec
from hwnas.supernet.supernet import Supernet


def int_list(text: str) -> list[int]:
    """"1-4,6" -> [1, 2, 3, 4, 6]."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def correct(r: EvalResult) -> np.ndarray:
    """Per-item correctness under the task's headline metric (its recorded predictions)."""
    c = np.array(r.predictions) == np.array(r.golds)
    if len(c) != r.n or abs(float(c.mean()) - r.score) > 1e-9:
        raise SystemExit(f"{r.task}: the stored predictions do not give the score "
                         f"({c.mean() if len(c) else None} vs {r.score}); re-run with an "
                         "empty store")
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--hw", default=None, help=f"profile [default: {DEFAULT_HW}, or the "
                    "demo's copy pinned to this machine]")
    ap.add_argument("--tasks", default="piqa")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--drops", default="1-8", help="layer counts to drop, e.g. 1-8")
    ap.add_argument("--widths", default="", help="uniform MLP widths, e.g. 1344,1152")
    ap.add_argument("--mixed", default="", help="drops:width pairs, e.g. 2:1344,4:1344")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    hw = a.hw or profile_for_this_machine(DEFAULT_HW)
    t = api.resolve_target(hw, a.model)
    sn = Supernet.load(a.model, dtype=t.hw.dtype)
    order = sn.layer_order()
    if order is None:
        raise SystemExit(f"{a.model}: no block-influence order (random weights?)")
    space = t.space
    cands: list[tuple[str, SubnetSpec | None]] = [("full", None)]
    cands += [(f"drop {k} least influential", space.uniform(drop=order[:k]))
              for k in int_list(a.drops) if k > 0]
    cands += [(f"every MLP at {w}", space.uniform(width=w)) for w in int_list(a.widths)]
    for pair in filter(None, (p.strip() for p in a.mixed.split(","))):
        k, _, w = pair.partition(":")
        cands.append((f"drop {k}, MLPs at {w}", space.uniform(width=int(w),
                                                             drop=order[:int(k)])))
    lat = api.latency_function(t, "bench_ranked_cuts")
    full_ms = lat(space.uniform())
    tasks = [x.strip() for x in a.tasks.split(",") if x.strip()]
    rows: list[dict[str, Any]] = []
    base: dict[str, np.ndarray] = {}
    with open_store() as store:
        for name, spec in cands:
            res = evaluate(sn, spec, tasks, limit=a.limit, seed=ITEM_SEED, store=store)
            row: dict[str, Any] = {"subnet": name, "key": spec.key() if spec else "full",
                                   "speedup_predicted": full_ms / lat(spec or space.uniform())}
            for task in tasks:
                c = correct(res[task])
                if spec is None:
                    base[task] = c
                d = c.astype(float) - base[task]
                row[task] = {"acc": float(c.mean()), "minus_full": float(d.mean()),
                             "paired_se": float(d.std(ddof=1) / math.sqrt(len(d)))}
            rows.append(row)
            print(f"{name:28s} {row['speedup_predicted']:5.2f}x  " + "  ".join(
                f"{task} {row[task]['acc']:.3f} ({row[task]['minus_full'] * 100:+.1f} "
                f"± {row[task]['paired_se'] * 100:.1f})" for task in tasks), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "hw": hw, "tasks": tasks, "limit": a.limit,
                       "item_seed": ITEM_SEED, "full_ms_predicted": full_ms, "rows": rows},
                      f, indent=1)


if __name__ == "__main__":
    main()
