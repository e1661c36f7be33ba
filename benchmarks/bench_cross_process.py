"""Predictions against measurements taken as users take them: separate commands.

For `--subnets` random subnets (graded, seeded), `hwnas predict --json` and a fresh
`hwnas measure --no-store --primary-only --json` run as separate processes, one after the
other; then the full model is measured by `--repeats` separate `measure` commands. Prints the
share of subnets whose prediction is within ±10% of the fresh measurement and the spread of
the full model's measurements ((max - min) / min).

The predictors must be trained in the cache first (`hwnas profile`, `hwnas predictors train`,
or the demo, or benchmarks/bench_interference.py, whose quiet cache is the default):

    HWNAS_CACHE=/tmp/hwnas-bench-interference/quiet .venv/bin/python \
        benchmarks/bench_cross_process.py [--hw cpu-torch-fp32] [--subnets 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HWNAS = str(Path(sys.executable).with_name("hwnas"))


def run(*args: str) -> dict:
    out = subprocess.run([HWNAS, *args, "--json"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"hwnas {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="cpu-torch-fp32")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--subnets", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    os.environ.setdefault("HWNAS_CACHE", "/tmp/hwnas-bench-interference/quiet")
    from hwnas.supernet.models import load_config
    from hwnas.supernet.supernet import Supernet

    space = Supernet.from_config(load_config(a.model), name=a.model).space
    rng = np.random.default_rng(a.seed)
    specs = [space.sample_graded(rng, float(lv)) for lv in rng.uniform(0.05, 0.9, a.subnets)]
    rows = []
    for i, spec in enumerate(specs):
        s = spec.to_json()
        pred = run("predict", "--hw", a.hw, "--model", a.model, "--subnet", s)
        meas = run("measure", "--hw", a.hw, "--model", a.model, "--subnet", s, "--no-store",
                   "--primary-only")
        err = pred["latency_ms"] / meas["latency_ms"] - 1
        rows.append({"layers": spec.num_layers, "predicted": pred["latency_ms"],
                     "measured": meas["latency_ms"], "err": err,
                     "busy": any(meas.get("busy", {}).values())})
        print(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{len(specs)} {spec.num_layers} layers: "
              f"predicted {pred['latency_ms']:.0f} ms, measured {meas['latency_ms']:.0f} ms "
              f"({err:+.1%}){' busy' if rows[-1]['busy'] else ''}", flush=True)
    full = space.full().to_json()
    fulls = [run("measure", "--hw", a.hw, "--model", a.model, "--subnet", full, "--no-store",
                 "--primary-only")["latency_ms"] for _ in range(a.repeats)]
    errs = np.array([r["err"] for r in rows])
    res = {"within_10": float(np.mean(np.abs(errs) <= 0.10)),
           "mape": float(np.mean(np.abs(errs)) * 100), "mean_err": float(errs.mean()),
           "full_ms": fulls, "full_spread": float((max(fulls) - min(fulls)) / min(fulls)),
           "busy_subnets": int(sum(r["busy"] for r in rows)), "rows": rows}
    print(f"separate commands: {res['within_10']:.0%} of {len(rows)} within ±10% (MAPE "
          f"{res['mape']:.1f}%, mean error {res['mean_err']:+.1%}); full model over "
          f"{a.repeats} measure commands: {', '.join(f'{v:.0f}' for v in fulls)} ms, spread "
          f"{res['full_spread']:.1%}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
