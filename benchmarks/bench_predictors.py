"""The real predictor acceptance run: profile layers, measure held-out and training subnets for
real, train, and report held-out accuracy of every predictor and baseline; optionally evaluate
random subnets for accuracy and report the accuracy predictor against Ridge/SVR.

Timing runs must not overlap other timing work; run it as

    flock /tmp/hwnas-timing.lock .venv/bin/python benchmarks/bench_predictors.py \
        --hw cpu-torch-fp32 --hw cpu-onnxruntime-fp32 --holdout 50 --subnets 12

and the accuracy part (no timing, long) as

    nice -n 10 .venv/bin/python benchmarks/bench_predictors.py --accuracy 80 \
        --task arc_easy --limit 200 --no-latency

Everything is resumable: measurements and evaluations are keyed in the store, so a re-run
skips what is there. Figures go to --out (default: ./predictor-report/<hw>).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def latency(hw: str, model: str, holdout: int, subnets: int, out: Path, sn: object) -> dict:
    from hwnas.pipeline.measure import measure_for_report
    from hwnas.predictors import api
    from hwnas.predictors.output import write_report
    from hwnas.predictors.report import MAIN
    from hwnas.profilers import profile_layers
    from hwnas.profilers.peaks import cached_peaks
    from hwnas.store import open_store

    t = api.resolve_target(hw, model)
    with open_store() as store:
        t0 = time.perf_counter()
        summary = profile_layers(t.hw, sn, store)
        log(f"{hw}: layer profile ready ({time.perf_counter() - t0:.0f} s): {summary}")
        t0 = time.perf_counter()
        n = measure_for_report(t, store, holdout, subnets,
                               lambda ev: log(f"{hw}: subnet {ev.done + 1}/{ev.total}"))
        log(f"{hw}: measured {n} new subnets for real ({time.perf_counter() - t0:.0f} s)")
        peaks = cached_peaks(t.hw.device, t.hw.dtype, t.hw.threads)
        trained = api.train(t, store)
        res = {"hw": hw, "trained": trained.to_dict(), "profile": summary.to_dict()}
        for stat in ("median", "min"):
            r = api.report(t, store, n_holdout=holdout, peaks=peaks, statistic=stat)
            files = write_report(r, out / hw / stat)
            m = r.latency[MAIN]["primary"]
            best, best_mape = r.best_baseline()
            res[stat] = {"n_holdout": r.n_holdout, "n_layer_samples": r.n_layer_samples,
                         "n_train_subnets": r.n_train_subnets, "main": m,
                         "best_baseline": best, "best_baseline_mape": best_mape,
                         "beats_every_baseline": all(m["mape"] < v["primary"]["mape"]
                                                     for k, v in r.latency.items() if k != MAIN),
                         "accept": m["within_10"] >= 0.95 and m["spearman"] >= 0.95,
                         "efficiency": _needed(r.efficiency), "report": str(files[0])}
            print(Path(files[0]).read_text())
    return res


def _needed(rows: list[dict]) -> dict:
    """Smallest sample count whose mean held-out within-10% reaches 95% (XGBoost)."""
    by_n: dict[float, list[dict]] = {}
    for r in rows:
        if r["predictor"] == "xgboost-layers":
            by_n.setdefault(r["n_layer_samples"], []).append(r)
    for n in sorted(by_n):
        g = by_n[n]
        if np.mean([x["within_10"] for x in g]) >= 0.95:
            return {"n_layer_samples": n, "timed_s": float(np.mean([x["timed_s"] for x in g])),
                    "mape": float(np.mean([x["mape"] for x in g]))}
    return {"n_layer_samples": None}


def accuracy(model: str, n: int, task: str, limit: int, out: Path) -> dict:
    from hwnas.evaluation import evaluate
    from hwnas.predictors import holdout
    from hwnas.predictors.data import AccuracySample
    from hwnas.predictors.markdown import _accuracy
    from hwnas.predictors.report import evaluate_accuracy
    from hwnas.store import open_store

    sn = _supernet(model)
    rng = np.random.default_rng(holdout.TRAIN_SEED + 1000)
    specs = [sn.space.full()] + [holdout.sample_graded(sn.space, rng) for _ in range(n - 1)]
    samples = []
    with open_store() as store:
        for i, spec in enumerate(specs):
            t0 = time.perf_counter()
            res = evaluate(sn, spec, [task], limit=limit, store=store)
            value = float(res[task].score)
            if res[task].metric == "perplexity":  # the predictors learn log(perplexity)
                value = float(np.log(value))
            samples.append(AccuracySample(spec, value))
            log(f"accuracy: subnet {i + 1}/{n} ({spec.num_layers} layers) acc "
                f"{res[task].score:.3f} {time.perf_counter() - t0:.0f} s")
    acc = evaluate_accuracy(sn.space, samples, [task])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"accuracy_{task}.json").write_text(json.dumps(acc, indent=2))
    print("\n".join(_accuracy(acc)))
    return {k: v for k, v in acc.items() if k != "points"}


def _supernet(model: str) -> object:
    from hwnas.supernet.supernet import Supernet
    return Supernet.load(model, dtype="fp32")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", action="append", default=None)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--holdout", type=int, default=50)
    ap.add_argument("--subnets", type=int, default=12)
    ap.add_argument("--accuracy", type=int, default=0, help="evaluated subnets (0: skip)")
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("predictor-report"))
    a = ap.parse_args()
    results = {}
    if not a.no_latency:
        sn = _supernet(a.model)
        for hw in a.hw or ["cpu-torch-fp32"]:
            results[hw] = latency(hw, a.model, a.holdout, a.subnets, a.out, sn)
    if a.accuracy:
        results["accuracy"] = accuracy(a.model, a.accuracy, a.task, a.limit, a.out)
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
