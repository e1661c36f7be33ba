"""Latency figures on a quiet machine and beside a bounded background load, side by side.

Each condition starts from an empty cache of its own and runs what a user runs: profile the
layers, measure the held-out (and training) subnets for real, train the predictors, report.
The loaded condition starts a background process of its own, busy `--duty` of the time on
one core in short bursts, that stops by itself after `--load-max-s` (and is stopped at the
end of the condition). The commands' own interference handling is what is measured: with the
profile's defaults they wait for a quiet machine (up to `interference.max_wait_s`), then time
and flag each record taken on a busy machine; the benchmark prints how many were flagged
and how long they waited, next to the held-out figures.

    .venv/bin/python benchmarks/bench_interference.py [--hw cpu-torch-fp32] \
        [--holdout 50] [--subnets 10] [--duty 0.3] [--conditions quiet,loaded] \
        [--work DIR] [--json out.json]

Resumable: a condition's cache is kept under --work (default /tmp/hwnas-bench-interference);
a re-run measures only what is missing and reports again. `--fresh` empties it first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LOAD = """
import sys, time
duty, period, stop = float(sys.argv[1]), 0.1, time.monotonic() + float(sys.argv[2])
while time.monotonic() < stop:
    t = time.monotonic()
    while time.monotonic() - t < duty * period:
        pass
    time.sleep(max(0.0, period - (time.monotonic() - t)))
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def busy_counts(cache: Path, hw: str) -> dict[str, object]:
    from hwnas.store import Store

    store = Store(cache / "store.sqlite")
    rows = store.measurements(hw=hw)
    by_kind: dict[str, list[int]] = {}
    for r in rows:
        if "times_ms" not in r:
            continue
        kind = r["spec"]["target"]
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += 1
        by_kind[kind][1] += int(bool(r.get("busy")))
    others = [r.get("interference", {}).get("others_cores") for r in rows]
    others = [o for o in others if isinstance(o, (int, float))]
    store.close()
    return {"records": {k: {"n": n, "busy": b} for k, (n, b) in by_kind.items()},
            "others_cores_mean": (sum(others) / len(others)) if others else None,
            "others_cores_max": max(others) if others else None}


def condition(name: str, a: argparse.Namespace, sn: object) -> dict[str, object]:
    from bench_predictors import latency

    cache = a.work / name
    if a.fresh and cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["HWNAS_CACHE"] = str(cache)
    load = None
    if name == "loaded":
        load = subprocess.Popen([sys.executable, "-c", LOAD, str(a.duty), str(a.load_max_s)])
        log(f"background load: pid {load.pid}, busy {a.duty:.0%} of each 100 ms on one core, "
            f"stops by itself after {a.load_max_s:.0f} s")
        time.sleep(1.0)
    t0 = time.monotonic()
    try:
        res = latency(a.hw, a.model, a.holdout, a.subnets, a.work / f"{name}-report", sn)
    finally:
        if load is not None:
            load.terminate()
            load.wait()
    stat = res.get("trained", {}).get("statistic") if isinstance(res.get("trained"), dict) \
        else None
    stats = [s for s in ("median", "min") if s in res]
    return {"elapsed_s": round(time.monotonic() - t0, 1), "statistic": stat,
            "primary": {s: res[s]["main"] for s in stats},
            "interference": busy_counts(cache, a.hw),
            "accept": {s: res[s]["accept"] for s in stats},
            # profiling time to reach the bar (95% within 10%), read off the sample-efficiency
            # curve of the report
            "efficiency": {s: res[s]["efficiency"] for s in stats},
            "profile": res.get("profile")}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="cpu-torch-fp32")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--holdout", type=int, default=50)
    ap.add_argument("--subnets", type=int, default=10)
    ap.add_argument("--duty", type=float, default=0.3)
    ap.add_argument("--load-max-s", type=float, default=3600.0)
    ap.add_argument("--conditions", default="quiet,loaded")
    ap.add_argument("--work", type=Path, default=Path("/tmp/hwnas-bench-interference"))
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    from hwnas.supernet.supernet import Supernet

    sn = Supernet.load(a.model, dtype="fp32")
    out: dict[str, object] = {"hw": a.hw, "holdout": a.holdout, "duty": a.duty}
    for name in a.conditions.split(","):
        log(f"condition {name}")
        out[name] = condition(name, a, sn)
        if a.json:
            a.json.write_text(json.dumps(out, indent=1, default=str))
    names = [n for n in a.conditions.split(",")]
    print(f"\n{'':34s}" + "".join(f"{n:>16s}" for n in names))
    for stat in ("median", "min"):
        for metric in ("mape", "within_10", "spearman"):
            vals = [out[n]["primary"].get(stat, {}).get(metric)  # type: ignore[index, union-attr]
                    for n in names]
            print(f"{stat + ' ' + metric:34s}" + "".join(f"{_fmt(v):>16s}" for v in vals))
    for n in names:
        i = out[n]["interference"]  # type: ignore[index]
        print(f"{n}: records (n, busy) {i['records']}; others' cores mean "  # type: ignore[index]
              f"{_fmt(i['others_cores_mean'])}, max {_fmt(i['others_cores_max'])}; "
              f"{out[n]['elapsed_s']} s")  # type: ignore[index]
    print(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
