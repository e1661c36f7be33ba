"""What to read a whole subnet against, across processes: as timed, against the reference
layer timed beside it, or against the full model timed beside it.

`--processes` separate processes, one after the other, each time the same `--subnets` random
subnets (graded, seeded) in one group at the profile's primary workloads, through
`measure_subnets` with `timer.subnet_reference: model` (so every record carries both the
reference layer's runs and the full model's). For each subnet and workload the spread across
processes ((max - min) / min) of: the figure as timed (the profile's statistic), its ratio to
the reference layer beside it, and its ratio to the full model beside it (both read run by
run, as `hwnas.profilers.footing` reads them). A reading whose ratio holds still across
processes puts figures taken at different times on one footing; nothing is stored.

    .venv/bin/python benchmarks/bench_model_reference.py --hw cpu-openvino-fp32 \\
        [--subnets 4] [--processes 3] [--json FILE]

Each process exports its programs anew (ONNX backends: about a minute a process for four
subnets); run it with nothing else on the machine, or label the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def worker(hw_name: str, model: str, n: int, seed: int, out: Path) -> None:
    from hwnas.hw_profiles import load_profile
    from hwnas.profilers.subnet import measure_subnets
    from hwnas.supernet.supernet import Supernet

    hw = load_profile(hw_name)
    hw = hw.model_copy(update={"timer": hw.timer.model_copy(
        update={"subnet_reference": "model"})})
    sn = Supernet.load(model, dtype=hw.dtype)
    rng = np.random.default_rng(seed)
    specs = [sn.space.sample_graded(rng, float(lv)) for lv in rng.uniform(0.1, 0.8, n)]
    lats = measure_subnets(hw, sn, specs, store=None, workloads_="primary")
    out.write_text(json.dumps([[m.to_dict() for m in lat.measurements] for lat in lats]))


def readings(rec: dict[str, Any], statistic: str) -> dict[str, float]:
    from hwnas.profilers.footing import paired_ratio, statistic_ms

    ref, whole = rec["reference"], rec["model_reference"]
    return {"as timed": statistic_ms(rec, statistic),
            "against the layer": paired_ratio(rec["times_ms"], rec["stamps"], ref["times_ms"],
                                              ref["stamps"]) or float("nan"),
            "against the full model": paired_ratio(rec["times_ms"], rec["stamps"],
                                                   whole["times_ms"], whole["stamps"])
            or float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="cpu-openvino-fp32")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--subnets", type=int, default=4)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker is not None:
        worker(a.hw, a.model, a.subnets, a.seed, a.worker)
        return 0
    from hwnas.hw_profiles import load_profile
    from hwnas.hw_profiles.workload import Workload

    statistic = load_profile(a.hw).timer.statistic
    runs: list[list[list[dict[str, Any]]]] = []
    started = []
    for p in range(a.processes):
        out = Path(f"/tmp/hwnas-bench-model-reference-{p}.json")
        started.append(time.strftime("%Y-%m-%d %H:%M:%S"))
        subprocess.run([sys.executable, __file__, "--hw", a.hw, "--model", a.model,
                        "--subnets", str(a.subnets), "--seed", str(a.seed), "--worker",
                        str(out)], check=True)
        runs.append(json.loads(out.read_text()))
        out.unlink()
        print(f"[{time.strftime('%H:%M:%S')}] process {p + 1}/{a.processes} done", flush=True)
    rows = []
    for i in range(a.subnets):
        for k in range(len(runs[0][i])):
            per = [readings(run[i][k], statistic) for run in runs]
            wl = Workload.from_dict(runs[0][i][k]["spec"]).name
            for name in per[0]:
                v = np.array([r[name] for r in per])
                rows.append({"subnet": i, "workload": wl, "reading": name,
                             "values": v.tolist(), "spread": float(v.max() / v.min() - 1)})
    summary: dict[str, dict[str, float]] = {}
    print(f"\n{a.hw}, {a.subnets} subnets x {a.processes} processes: spread across processes, "
          "(max - min) / min, median and max over subnets")
    for wl in sorted({r["workload"] for r in rows}):
        for name in ("as timed", "against the layer", "against the full model"):
            s = [r["spread"] for r in rows if r["workload"] == wl and r["reading"] == name]
            summary[f"{wl} {name}"] = {"median": float(np.median(s)), "max": float(np.max(s))}
            print(f"  {wl:12s} {name:24s} median {np.median(s):6.1%}  max {np.max(s):6.1%}")
    if a.json:
        a.json.write_text(json.dumps({"hw": a.hw, "model": a.model, "subnets": a.subnets,
                                      "processes": a.processes, "started": started,
                                      "statistic": statistic, "summary": summary,
                                      "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
