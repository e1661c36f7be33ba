"""End to end on the embedded model and this CPU: LINAS with at most 100 real evaluations,
the Pareto set re-measured (fresh timing of the primary metric, accuracy on more items) beside
the full model measured the same way, the latency agreement share, and the acceptance target
(a subnet >= 1.3x faster and >= 1.2x smaller at <= 2 points accuracy drop).

    nice -n 10 .venv/bin/python benchmarks/bench_search_e2e.py --tasks piqa \
        --objectives accuracy,params --evals 24 --init 8 --batch 4 --limit 30 \
        --final-limit 150 --final-max 2 --latency predicted \
        --timing-lock /tmp/hwnas-timing.lock --run bench-e2e-piqa-params --out /tmp/e2e

(the acceptance settings are --evals 100 --limit 100 --final-limit 1000; the run above is what
fitted this shared machine's time.) `--speedup 1.3 --smaller 1.2` turn the acceptance target
into the search's constraints (maximum latency = the full model's predicted latency / 1.3,
maximum parameters = the full model's / 1.2), so the whole budget goes to the most accurate
subnets that are fast and small enough.

Re-running the same command resumes the run (kill -9 safe). Needs the profile's layer
measurements (`hwnas profile --hw cpu-torch-fp32`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hwnas.search import SearchConfig, search
from hwnas.search.objectives import Constraints
from hwnas.search.plot import pareto_png
from hwnas.search.report import markdown
from hwnas.search.runs import summary
from hwnas.search.state import RunState
from hwnas.store import open_store


def target(summ: dict, speed: float = 1.3, smaller: float = 1.2, drop: float = 0.02) -> dict:
    ref = summ["reference"]["measured"]
    rows = []
    for i, p in enumerate(summ["pareto"], start=1):
        m = p["measured"]
        if not m or not ref:
            continue
        rows.append({"pick": i, "key": p["key"], "speedup": ref["latency_ms"] / m["latency_ms"],
                     "smaller": ref["params"] / m["params"],
                     "accuracy_drop_points": 100 * (ref["accuracy"] - m["accuracy"])})
    hit = [r for r in rows if r["speedup"] >= speed and r["smaller"] >= smaller
           and r["accuracy_drop_points"] <= 100 * drop]
    return {"rows": rows, "met": bool(hit), "meeting": hit}


def constraints(a: argparse.Namespace, store: object, name: str) -> Constraints:
    """Bounds from --speedup / --smaller against the full model (`hwnas search --min-speedup
    / --min-smaller` do the same)."""
    from hwnas.search.relative import relative_bounds

    return Constraints(*relative_bounds(a.hw, a.model, store, min_speedup=a.speedup,
                                        min_smaller=a.smaller, seed=a.seed, run=name))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hw", default="cpu-torch-fp32")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", default="piqa")
    ap.add_argument("--objectives", default="accuracy,latency")
    ap.add_argument("--evals", type=int, default=60)
    ap.add_argument("--init", type=int, default=12)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--final-limit", type=int, default=1000, help="0: every item")
    ap.add_argument("--final-max", type=int, default=4)
    ap.add_argument("--latency", default="predicted", choices=["measured", "predicted"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-lock", default=None)
    ap.add_argument("--run", default=None)
    ap.add_argument("--speedup", type=float, default=None,
                    help="constrain latency to the full model's predicted latency / this")
    ap.add_argument("--smaller", type=float, default=None,
                    help="constrain parameters to the full model's / this")
    ap.add_argument("--out", type=Path, default=Path("/tmp/hwnas-bench-search"))
    a = ap.parse_args()
    name = a.run or (f"bench-e2e-{a.tasks}-{a.objectives.replace(',', '-')}-{a.evals}-"
                     f"{a.latency}-seed{a.seed}")
    start = time.time()
    with open_store() as store:
        bounds = constraints(a, store, name)
    cfg = SearchConfig(hw=a.hw, model=a.model, tasks=tuple(a.tasks.split(",")),
                       objectives=tuple(a.objectives.split(",")), evals=a.evals,
                       seed=a.seed, init=a.init, batch=a.batch, limit=a.limit,
                       final_limit=a.final_limit or None, final_max=a.final_max,
                       latency=a.latency, constraints=bounds)
    print(f"constraints: {bounds.to_dict()}", flush=True)

    def progress(info: dict) -> None:
        if info.get("phase") in ("iteration", "reference", "remeasure", "done"):
            print(f"[{time.time() - start:7.0f} s] {json.dumps(info, default=str)}", flush=True)

    with open_store() as store:
        search(cfg, store, name, resume=None, progress=progress, lock=a.timing_lock)
        summ = summary(store, name)
        a.out.mkdir(parents=True, exist_ok=True)
        plot = pareto_png(RunState.load(store, name), summ, a.out / f"{name}.png")
    summ["acceptance"] = target(summ)
    (a.out / f"{name}.json").write_text(json.dumps(summ, indent=2, default=str))
    (a.out / f"{name}.md").write_text(markdown(summ, None, plot, vars(a)))
    print((a.out / f"{name}.md").read_text())
    print(json.dumps({"acceptance": summ["acceptance"], "agreement": summ["agreement"]},
                     indent=2))


if __name__ == "__main__":
    main()
