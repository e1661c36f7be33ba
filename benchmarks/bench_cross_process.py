"""Predictions against measurements taken as users take them: separate commands.

For `--subnets` random subnets (graded, seeded), `hwnas predict --json` and a fresh
`hwnas measure --no-store --primary-only --json` run as separate processes, one after the
other; then the full model is measured by `--repeats` separate `measure` commands. Prints the
share of subnets whose prediction is within ±10% of the fresh measurement and the spread of
the full model's measurements ((max - min) / min), both for the figure at the profile's speed
(`profile_latency_ms`, what `measure` compares with predictions) and as timed
(`latency_ms`), side by side.

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
from typing import Any

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
        footed = meas.get("profile_latency_ms")
        if footed is None:
            raise SystemExit("hwnas measure gave no figure at the profile's speed: the cache "
                             "has no layer profile of this hardware profile")
        err, raw_err = pred["latency_ms"] / footed - 1, pred["latency_ms"] / meas["latency_ms"] - 1
        rows.append({"layers": spec.num_layers, "predicted": pred["latency_ms"],
                     "measured": footed, "as_timed": meas["latency_ms"], "err": err,
                     "err_as_timed": raw_err, "speed": meas.get("speed", {}),
                     "busy": any(meas.get("busy", {}).values())})
        print(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{len(specs)} {spec.num_layers} layers: "
              f"predicted {pred['latency_ms']:.0f} ms, measured {footed:.0f} ms at the "
              f"profile's speed ({err:+.1%}), {meas['latency_ms']:.0f} ms as timed "
              f"({raw_err:+.1%}){' busy' if rows[-1]['busy'] else ''}", flush=True)
    full = space.full().to_json()
    fulls = [run("measure", "--hw", a.hw, "--model", a.model, "--subnet", full, "--no-store",
                 "--primary-only") for _ in range(a.repeats)]
    res: dict[str, Any] = {"subnets": len(rows), "busy_subnets":
                              int(sum(r["busy"] for r in rows)), "rows": rows}
    for name, key, ekey in (("at profile speed", "profile_latency_ms", "err"),
                            ("as timed", "latency_ms", "err_as_timed")):
        errs = np.array([r[ekey] for r in rows])
        f = [float(m[key]) for m in fulls]
        res[name] = {"within_10": float(np.mean(np.abs(errs) <= 0.10)),
                     "mape": float(np.mean(np.abs(errs)) * 100), "mean_err": float(errs.mean()),
                     "full_ms": f, "full_spread": (max(f) - min(f)) / min(f)}
        r = res[name]
        print(f"{name}: {r['within_10']:.0%} of {len(rows)} within ±10% (MAPE {r['mape']:.1f}%, "
              f"mean error {r['mean_err']:+.1%}); full model over {a.repeats} measure "
              f"commands: {', '.join(f'{v:.0f}' for v in f)} ms, spread {r['full_spread']:.1%}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
