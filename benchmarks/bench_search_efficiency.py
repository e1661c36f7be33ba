"""How many real evaluations a strategy needs, measured fairly (issue 13).

Every strategy runs on the same problem with paired seeds (the same seed gives every
strategy the same structured initial design), for the largest budget; a run's trajectory
does not depend on its budget, so one run gives every smaller budget. Real evaluations are
cached in the store, so a subnet two runs both visit costs once.

- Hypervolume after every evaluation, normalised by the pooled best-known front: every point
  any run evaluated (plus, with --long N, one NSGA-II run of N evaluations).
- Evaluations-to-target per seed: the target is the better NSGA-II's median normalised
  hypervolume at 100 and at 200 (those in --budgets); a run that never reaches it counts as
  more than its budget (null in the JSON).
- Paired statistics against the better NSGA-II: the mean paired difference with a bootstrap
  95% interval, and Wilcoxon's signed-rank p-value, per budget.

The perplexity problem (the default: perplexity on --limit held-out passages, against
parameters, which are exact, so it needs no hardware profile):
    nice -n 10 .venv/bin/python benchmarks/bench_search_efficiency.py --problem ppl \
        --seeds 0,1,2 --budgets 25,50,100 --out /tmp/hwnas-bench-search --json
The task problem (--quality, gold_prob by default, on the same --limit items of --tasks
for every subnet, against parameters):
    ... --problem task --tasks arc_easy --limit 100 --budgets 25,50,100
Synthetic, seconds per run (the fake evaluator on the real model's shape):
    ... --problem fake
Interrupting is safe: re-running resumes every run (--report-only reads what exists).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import SearchConfig, search
from hwnas.search.objectives import objectives
from hwnas.search.problem import Normaliser, hypervolume, non_dominated
from hwnas.search.state import RunState
from hwnas.store import Store, open_store

# name -> (strategy, initial design / NSGA-II population)
STRATEGIES = {"linas": ("linas", None), "linas-v1": ("linas-v1", None),
              "nsga2-pop10": ("nsga2", 10), "nsga2-pop20": ("nsga2", 20),
              "random": ("random", None), "local": ("local", None),
              "optuna-tpe": ("optuna-tpe", None), "optuna-gp": ("optuna-gp", None)}
PROBLEMS: dict[str, tuple[str, str | None, str]] = {
    "ppl": ("real", "heldout_ppl", "perplexity,params"),
    "task": ("real", None, "{quality},params"),
    "fake": ("fake", "synthetic", "accuracy,params")}


def config(a: argparse.Namespace, label: str, seed: int, evals: int | None = None
           ) -> SearchConfig:
    strategy, pop = STRATEGIES[label]
    evaluator, tasks, objs = PROBLEMS[a.problem]
    return SearchConfig(hw=a.hw, model=a.model, tasks=tuple(str(a.tasks or tasks).split(",")),
                        objectives=tuple(objs.format(quality=a.quality).split(",")),
                        evals=evals or max(a.budgets),
                        seed=seed, strategy=strategy, init=pop or a.init, batch=a.batch,
                        limit=a.limit, final_max=0, evaluator=evaluator,
                        latency="none" if evaluator == "real" else "predicted",
                        inner_pop=a.inner_pop, inner_gens=a.inner_gens)


def run_name(a: argparse.Namespace, label: str, seed: int, evals: int | None = None) -> str:
    c = config(a, label, seed, evals)
    quality = f"-{a.quality}" if a.problem == "task" else ""
    return (f"bench-search-{a.problem}-{'-'.join(c.tasks)}-{a.limit}{quality}-{label}-"
            f"seed{seed}-b{c.evals}-i{c.init}-k{a.batch}")


def points(state: RunState, norm: Normaliser) -> np.ndarray:
    rows = [norm.row(r.measured.values) for r in state.evals.values()]
    return np.vstack(rows) if rows else np.zeros((0, len(norm.objectives)))


def curve(F: np.ndarray, ref: np.ndarray) -> list[float]:
    out = []
    for i in range(1, len(F) + 1):
        G = F[:i]
        out.append(hypervolume(G[non_dominated(G)], ref))
    return out


def collect(a: argparse.Namespace, store: Any) -> tuple[dict[str, dict[int, list[float]]],
                                                         float]:
    states: dict[tuple[str, int], RunState] = {}
    for label in a.strategies:
        for seed in a.seeds:
            n = run_name(a, label, seed)
            if store.run_config(n) is not None:
                states[(label, seed)] = RunState.load(store, n)
    extra = []
    if a.long:
        n = run_name(a, "nsga2-pop20", 0, a.long)
        if store.run_config(n) is not None:
            extra.append(RunState.load(store, n))
    ref_state = next((s for s in [*states.values(), *extra] if s.reference is not None), None)
    if ref_state is None:
        return {}, 0.0
    objs = tuple(objectives(config(a, a.strategies[0], 0).objectives))
    norm = Normaliser(objs, dict(ref_state.reference.values))  # type: ignore[union-attr]
    ref = norm.ref_point()
    pooled = np.vstack([points(s, norm) for s in [*states.values(), *extra]])
    best = hypervolume(pooled[non_dominated(pooled)], ref)
    out: dict[str, dict[int, list[float]]] = {}
    for (label, seed), st in states.items():
        out.setdefault(label, {})[seed] = [h / best for h in curve(points(st, norm), ref)]
    return out, best


def at(c: list[float], b: int) -> float | None:
    return c[b - 1] if len(c) >= b else None


def summarise(a: argparse.Namespace, cv: dict[str, dict[int, list[float]]]) -> dict[str, Any]:
    from scipy.stats import wilcoxon

    nsga: list[str] = [s for s in ("nsga2-pop10", "nsga2-pop20") if s in cv]
    med = {s: {b: float(np.median([v for c in cv[s].values() if (v := at(c, b)) is not None]))
               for b in a.budgets if any(at(c, b) is not None for c in cv[s].values())}
           for s in nsga}
    better = max(nsga, key=lambda s: med[s].get(max(a.budgets), 0.0)) if nsga else None
    at_better = med[better] if better is not None else {}
    targets = {b: at_better[b] for b in (100, 200) if b in at_better}
    res: dict[str, Any] = {"strategies": {}, "better_nsga2": better, "targets": targets}
    rng = np.random.default_rng(0)
    for label, per_seed in cv.items():
        hv = {b: [at(per_seed[s], b) for s in sorted(per_seed)] for b in a.budgets}
        to_target = {str(b): {str(s): next((i + 1 for i, v in enumerate(per_seed[s])
                                            if v >= t - 1e-12), None) for s in sorted(per_seed)}
                     for b, t in targets.items()}
        row: dict[str, Any] = {"hv": hv, "evals_to_target": to_target,
                               "median_hv": {b: float(np.median([v for v in vs if v is not None]))
                                             for b, vs in hv.items() if any(v is not None
                                                                            for v in vs)}}
        if better and label != better:
            paired = {}
            for b in a.budgets:
                d = [x - y for s in sorted(per_seed) if s in cv[better]
                     and (x := at(per_seed[s], b)) is not None
                     and (y := at(cv[better][s], b)) is not None]
                if not d:
                    continue
                boots = [float(np.mean(rng.choice(d, len(d)))) for _ in range(2000)]
                p = float(wilcoxon(d).pvalue) if len(d) >= 2 and any(d) else None
                paired[b] = {"mean_diff": float(np.mean(d)),
                             "ci95": [float(np.percentile(boots, 2.5)),
                                      float(np.percentile(boots, 97.5))],
                             "wilcoxon_p": p, "wins": int(sum(x > 0 for x in d)),
                             "seeds": len(d)}
            row["vs_better_nsga2"] = paired
        res["strategies"][label] = row
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default="ppl", choices=sorted(PROBLEMS))
    ap.add_argument("--hw", default="cpu-torch-fp32")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", default=None, help="task problem: e.g. piqa or arc_easy")
    ap.add_argument("--limit", type=int, default=None,
                    help="passages (ppl, default 2) or items per task (task, default 100)")
    ap.add_argument("--quality", default="gold_prob", choices=("gold_prob", "accuracy"),
                    help="task problem: the quality objective (gold_prob: the gold choice's "
                    "probability on the same items, the lower-noise signal)")
    ap.add_argument("--budgets", default="25,50,100,200")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--strategies", default="linas,linas-v1,nsga2-pop10,nsga2-pop20,random")
    ap.add_argument("--init", type=int, default=10)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--inner-pop", type=int, default=50)
    ap.add_argument("--inner-gens", type=int, default=30)
    ap.add_argument("--long", type=int, default=0, help="one NSGA-II run of N evaluations "
                    "joins the pooled best-known front")
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the JSON result")
    ap.add_argument("--out", type=Path, default=Path("/tmp/hwnas-bench-search"))
    a = ap.parse_args()
    a.budgets = sorted(int(b) for b in a.budgets.split(","))
    a.seeds = [int(s) for s in a.seeds.split(",")]
    a.strategies = a.strategies.split(",")
    if a.problem == "task" and not a.tasks:
        a.tasks = "piqa"
    if a.limit is None:
        a.limit = {"ppl": 2, "task": 100, "fake": 100}[a.problem]
    a.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with (Store(a.store) if a.store else open_store()) as store:
        if not a.report_only:
            for seed in a.seeds:  # seed-major: every strategy of a seed before the next seed
                for label in a.strategies:
                    n = run_name(a, label, seed)
                    t0 = time.time()
                    search(config(a, label, seed), store, n, resume=None)
                    print(f"[{time.time() - start:6.0f} s] {n} ({time.time() - t0:.0f} s)",
                          flush=True)
                    write(a, store, quiet=True)
            if a.long:
                search(config(a, "nsga2-pop20", 0, a.long), store,
                       run_name(a, "nsga2-pop20", 0, a.long), resume=None)
        write(a, store, quiet=not a.json)


def write(a: argparse.Namespace, store: Any, quiet: bool) -> None:
    cv, best = collect(a, store)
    res = summarise(a, cv) if cv else {"strategies": {}}
    res["pooled_best_hv"] = best
    res["settings"] = {k: v for k, v in vars(a).items() if k not in ("store", "out")}
    res["curves"] = {label: {seed: [round(h, 5) for h in c] for seed, c in per.items()}
                     for label, per in cv.items()}  # every evaluation's: 5 decimals keep it small
    (a.out / "search_efficiency.json").write_text(json.dumps(res, indent=1, default=str))
    if not quiet:
        print(json.dumps({k: v for k, v in res.items() if k != "curves"}, indent=1,
                         default=str), flush=True)


if __name__ == "__main__":
    main()
