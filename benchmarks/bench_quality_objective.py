"""Which quality signal on a few items ranks subnets as their full-split accuracy does (issue 13)?

For `--subnets` subnets spread over the space (fixed seed), on each task: accuracy on all
items (the truth, or the first `--full-limit`), and these signals, all on the search's seeded
sample of `--limit` items (the same items for every subnet: paired):

- ``acc``: plain accuracy (the task's headline metric);
- ``gold_prob``: the gold choice's mean softmax probability over the choices' scores;
- ``agree_full``: the share of items whose predicted choice is the full model's;
- ``neg_ppl``: minus the perplexity on `--ppl-limit` held-out passages (task-free).

It prints each signal's Spearman against the truth, with a bootstrap 95% interval over
subnets, and the paired difference to plain accuracy's. The signals of every subnet are
measured first (minutes), the truths after, one task at a time in `--tasks` order (hours on a
small CPU: list the cheaper task first to have its figures sooner). Every evaluation is cached
in the store, so a re-run is free and an interrupted one resumes; `--report-only` reports the
subnets whose truths are complete.

    nice -n 10 .venv/bin/python benchmarks/bench_quality_objective.py --tasks arc_easy,piqa \
        --subnets 40 --limit 100 --out /tmp/hwnas-bench-quality
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwnas.evaluation import evaluate, from_supernet
from hwnas.search.quality import ITEM_SEED
from hwnas.store import open_store
from hwnas.supernet.space import SubnetSpec
from hwnas.supernet.supernet import Supernet

SIGNALS = ("acc", "gold_prob", "agree_full", "neg_ppl")


def spearman_ci(x: np.ndarray, truth: np.ndarray, boot: np.random.Generator,
                base: np.ndarray | None = None) -> dict[str, object]:
    """Spearman of `x` against `truth`, its bootstrap 95% interval over subnets, and (with
    `base`) the paired bootstrap interval of the difference to `base`'s."""
    rho = float(spearmanr(x, truth).statistic)
    bs, diff = [], []
    for _ in range(1000):
        idx = boot.integers(0, len(x), len(x))
        r = float(spearmanr(x[idx], truth[idx]).statistic)
        bs.append(r)
        if base is not None:
            diff.append(r - float(spearmanr(base[idx], truth[idx]).statistic))
    out: dict[str, object] = {"spearman": rho, "ci95": [float(np.nanpercentile(bs, 2.5)),
                                                       float(np.nanpercentile(bs, 97.5))]}
    if base is not None:
        out["minus_acc_ci95"] = [float(np.nanpercentile(diff, 2.5)),
                                 float(np.nanpercentile(diff, 97.5))]
    return out


def signals_against_truth(done: list[dict[str, Any]], t: str,
                          boot: np.random.Generator) -> dict[str, Any]:
    truth = np.array([r[t]["truth"] for r in done])
    acc = np.array([r[t]["acc"] for r in done], dtype=float)
    out: dict[str, Any] = {"subnets": len(done)}
    for signal in SIGNALS:
        x = np.array([r["neg_ppl"] if signal == "neg_ppl" else r[t][signal] for r in done],
                     dtype=float)
        out[signal] = spearman_ci(x, truth, boot, None if signal == "acc" else acc)
    return out


def report(rows: list[dict[str, Any]], tasks: list[str]) -> dict[str, Any]:
    """Per task: every subnet with a truth, and (under "mild") those of the lower half of the
    compression levels, where a search decides between subnets close to the full model (the
    split is by the drawn level, fixed before anything is measured)."""
    boot = np.random.default_rng(0)
    warnings.filterwarnings("ignore", message="An input array is constant")  # tiny resamples
    mild_level = float(np.median([r["level"] for r in rows])) if rows else 0.0
    out: dict[str, Any] = {}
    for t in tasks:
        done = [r for r in rows if r[t].get("truth") is not None]
        if len(done) < 3:
            continue
        out[t] = signals_against_truth(done, t, boot)
        mild = [r for r in done if r["level"] <= mild_level]
        if len(mild) >= 3:
            out[t]["mild"] = {"max_level": mild_level} | signals_against_truth(mild, t, boot)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", default="piqa,arc_easy")
    ap.add_argument("--subnets", type=int, default=40)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--ppl-limit", type=int, default=2, help="held-out passages for neg_ppl "
                    "(the perplexity search problem's setting)")
    ap.add_argument("--full-limit", type=int, default=None, help="items for the truth "
                    "(default: the whole split)")
    ap.add_argument("--max-level", type=float, default=0.6,
                    help="compression levels drawn from 0..this (graded sampling)")
    ap.add_argument("--repair", default="none")
    ap.add_argument("--precision", default="auto", help="scoring precision (auto, exact, "
                    "bf16-checked), signals and truths alike")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report-only", action="store_true",
                    help="report from the store; measure nothing new")
    ap.add_argument("--out", type=Path, default=Path("/tmp/hwnas-bench-quality"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sn = Supernet.load(a.model)
    rng = np.random.default_rng(a.seed)
    levels = np.linspace(0.02, a.max_level, a.subnets)
    specs = [sn.space.sample_graded(rng, float(lv)) for lv in levels]
    tasks = a.tasks.split(",")
    start = time.time()
    with open_store() as store:
        def run(spec: SubnetSpec | None, names: list[str], limit: int | None,
                seed: int | None) -> dict[str, Any] | None:
            got = evaluate(from_supernet(sn, spec, a.repair), None, names, limit=limit,
                           seed=seed, store=store, precision=a.precision,
                           cached_only=a.report_only)
            return got if set(got) == set(names) else None

        full = run(None, tasks, a.limit, ITEM_SEED)
        measured: list[tuple[SubnetSpec, dict[str, Any]]] = []
        for i, spec in enumerate(specs):  # the signals first: cheap
            few = run(spec, tasks, a.limit, ITEM_SEED)
            ppl = run(spec, ["heldout_ppl"], a.ppl_limit, ITEM_SEED)
            if few is None or ppl is None or full is None:
                continue
            row: dict[str, Any] = {"subnet": spec.key(), "level": float(levels[i]),
                                   "neg_ppl": -ppl["heldout_ppl"].score}
            for t in tasks:
                g = few[t].extra.get("gold_prob")
                same = np.mean(np.array(few[t].predictions) == np.array(full[t].predictions))
                row[t] = {"acc": few[t].score, "agree_full": float(same),
                          "gold_prob": float(g["value"]) if isinstance(g, dict) else None}
            measured.append((spec, row))
            print(f"[{time.time() - start:6.0f} s] signals {i + 1}/{len(specs)} {spec.key()}",
                  flush=True)
        for t in tasks:  # then the truths, task by task (list the cheaper task first)
            for i, (spec, row) in enumerate(measured):
                truth = run(spec, [t], a.full_limit,
                            None if a.full_limit is None else ITEM_SEED)
                if truth is not None:
                    row[t].update(truth=truth[t].score, n_truth=truth[t].n)
                    print(f"[{time.time() - start:6.0f} s] truth {t} {i + 1}/{len(measured)} "
                          f"{row['subnet']}: {truth[t].score:.4f}", flush=True)
    rows = [row for _, row in measured]
    result: dict[str, Any] = {"settings": vars(a) | {"out": str(a.out)}, "rows": rows,
                              "spearman": report(rows, tasks)}
    (a.out / "quality_objective.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result["spearman"], indent=1))


if __name__ == "__main__":
    main()
