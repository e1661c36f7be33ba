"""Sample efficiency, the core claim: LINAS against plain NSGA-II on real evaluations at equal
real-evaluation budgets, over several seeds: hypervolume of the really-evaluated front after
50 / 100 / 200 evaluations, and how many evaluations NSGA-II needs to reach the hypervolume
LINAS reaches at 50.

Both strategies start from the same initial population for a seed and use the same initial
population size (--init) and LINAS batch size (--batch), so a run's trajectory does not depend
on its budget: one run of the largest budget gives every smaller one. The hypervolume uses the
run's fixed normalisation against the full model.

Real (a named cheaper quality proxy: perplexity on --limit held-out passages, against
parameters; with the default perplexity,latency objectives, latency comes from the profile's
layer-composed predictor, so no timing lock is needed):
    nice -n 10 .venv/bin/python benchmarks/bench_linas_vs_nsga2.py \
        --objectives perplexity,params --budgets 50 --seeds 0,1,2 --limit 2 --out /tmp/se-real
Synthetic (the search's fake evaluator on the real model's shape, seconds per run):
    .venv/bin/python benchmarks/bench_linas_vs_nsga2.py --evaluator fake --tasks synthetic \
        --seeds 0,1,2 --out /tmp/se-fake
Interrupting is safe: re-running resumes every run; --report-only reads what exists.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import SearchConfig, search
from hwnas.search.runs import hv_curve
from hwnas.search.state import RunState
from hwnas.store import Store, open_store


def config(a: argparse.Namespace, strategy: str, seed: int) -> SearchConfig:
    return SearchConfig(hw=a.hw, model=a.model, tasks=tuple(a.tasks.split(",")),
                        objectives=tuple(a.objectives.split(",")), evals=max(a.budgets),
                        seed=seed, strategy=strategy, init=a.init, batch=a.batch,
                        limit=a.limit, final_max=0, latency="predicted", evaluator=a.evaluator,
                        inner_pop=a.inner_pop, inner_gens=a.inner_gens)


def name(a: argparse.Namespace, strategy: str, seed: int) -> str:
    return (f"bench-se-{a.evaluator}-{a.tasks}-{a.limit}-{a.objectives.replace(',', '-')}-"
            f"{strategy}-seed{seed}-"
            f"b{max(a.budgets)}-i{a.init}-k{a.batch}")


def curves(a: argparse.Namespace, store: Store) -> dict[str, dict[int, list[float]]]:
    out: dict[str, dict[int, list[float]]] = {}
    for strategy in ("linas", "nsga2"):
        for seed in a.seeds:
            n = name(a, strategy, seed)
            if store.run_config(n) is None:
                continue
            c = hv_curve(RunState.load(store, n), config(a, strategy, seed))
            out.setdefault(strategy, {})[seed] = [hv for _, hv in c]
    return out


def summarise(a: argparse.Namespace, cv: dict[str, dict[int, list[float]]]) -> dict[str, Any]:
    table = {}
    for strategy, per_seed in cv.items():
        for b in a.budgets:
            vals = [c[b - 1] for c in per_seed.values() if len(c) >= b]
            table[f"{strategy}@{b}"] = {"mean": float(np.mean(vals)) if vals else None,
                                        "sd": float(np.std(vals)) if vals else None,
                                        "seeds": len(vals), "values": vals}
    reach = {}
    for seed, lc in cv.get("linas", {}).items():
        nc = cv.get("nsga2", {}).get(seed)
        if len(lc) < 50 or nc is None:
            continue
        goal = lc[49]
        hit = next((i + 1 for i, v in enumerate(nc) if v >= goal - 1e-12), None)
        reach[seed] = {"linas_hv_at_50": goal, "nsga2_evals_to_reach": hit,
                       "nsga2_evals_available": len(nc)}
    return {"hypervolume": table, "nsga2_evals_to_reach_linas_at_50": reach}


def figure(cv: dict[str, dict[int, list[float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, colour in (("linas", "tab:blue"), ("nsga2", "tab:orange")):
        for i, c in enumerate(cv.get(strategy, {}).values()):
            ax.plot(range(1, len(c) + 1), c, c=colour, alpha=0.6,
                    label=strategy if i == 0 else None)
    ax.set_xlabel("real evaluations")
    ax.set_ylabel("hypervolume of the real front")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--evaluator", default="real", choices=["real", "fake"])
    ap.add_argument("--hw", default="cpu-torch-fp32")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", default="heldout_ppl")
    ap.add_argument("--objectives", default=None)
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--budgets", default="50,100,200")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--init", type=int, default=10)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--inner-pop", type=int, default=50)
    ap.add_argument("--inner-gens", type=int, default=30)
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("/tmp/hwnas-bench-se"))
    a = ap.parse_args()
    a.budgets = sorted(int(b) for b in a.budgets.split(","))
    a.seeds = [int(s) for s in a.seeds.split(",")]
    if a.objectives is None:
        a.objectives = "perplexity,latency" if a.tasks == "heldout_ppl" else "accuracy,latency"
    a.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with (Store(a.store) if a.store else open_store()) as store:
        if not a.report_only:
            for seed in a.seeds:
                for strategy in ("linas", "nsga2"):
                    n = name(a, strategy, seed)
                    print(f"[{time.time() - start:6.0f} s] {n}", flush=True)
                    search(config(a, strategy, seed), store, n, resume=None)
                    write(a, curves(a, store))
        write(a, curves(a, store))


def write(a: argparse.Namespace, cv: dict[str, dict[int, list[float]]]) -> None:
    res = summarise(a, cv)
    res["settings"] = {k: v for k, v in vars(a).items() if k not in ("store", "out")}
    res["curves"] = cv
    (a.out / "sample_efficiency.json").write_text(json.dumps(res, indent=2, default=str))
    figure(cv, a.out / "sample_efficiency.png",
           f"LINAS vs NSGA-II ({a.evaluator}: {a.objectives} on {a.tasks}, limit {a.limit})")
    print(json.dumps({k: res[k] for k in ("hypervolume", "nsga2_evals_to_reach_linas_at_50")},
                     indent=1), flush=True)


if __name__ == "__main__":
    main()
