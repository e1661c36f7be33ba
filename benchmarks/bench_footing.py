"""Three ways of reading the same timings, side by side: how much of the held-out predictor
error on a shared machine is the machine's drift rather than the predictor.

One fresh cache is profiled and its held-out and training subnets measured once (what the
demo does, on the primary workloads only, so that it fits in minutes); the same records are
then read three ways and the latency predictors trained and judged on each:

- plain:   each record's statistic as timed (`timer.rescale_subnets: false`);
- group:   the previous reading: each whole-subnet figure scaled by one ratio per record, the
           profile's reference layer over the reference timed in the subnet's group;
- paired:  the new reading (`hwnas.profilers.footing`): every record, layer and subnet alike,
           read run by run against the reference's runs beside it in the same group.

    .venv/bin/python benchmarks/bench_footing.py [--hw cpu-torch-fp32] [--holdout 30] \
        [--subnets 10] [--work DIR] [--fresh] [--json out.json]

Resumable: the cache under --work is kept; a re-run measures only what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="cpu-torch-fp32")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--holdout", type=int, default=30)
    ap.add_argument("--subnets", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/hwnas-bench-footing"))
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if a.fresh and a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True, exist_ok=True)
    os.environ["HWNAS_CACHE"] = str(a.work)

    from hwnas.hw_profiles import load_profile
    from hwnas.pipeline.demo import profile_for_this_machine
    from hwnas.pipeline.measure import measure_for_report
    from hwnas.predictors import api
    from hwnas.predictors.report import MAIN
    from hwnas.profilers import footing, profile_layers
    from hwnas.store import open_store
    from hwnas.supernet.supernet import Supernet

    hw = load_profile(profile_for_this_machine(a.hw, log))
    pre, dec = hw.primary_workloads
    decode = tuple(w for w in hw.workloads.decode if w.context == hw.primary.decode_context)
    hw = hw.model_copy(update={"workloads": hw.workloads.model_copy(update={
        "prefill": (hw.primary.prefill_tokens,), "decode": decode})})
    log(f"profile {hw.name}, workloads {pre}, {dec} only")
    t = api.resolve_target(hw, a.model)
    sn = Supernet.load(a.model, dtype=hw.dtype)
    out: dict[str, object] = {"hw": hw.name, "holdout": a.holdout, "subnets": a.subnets}
    with open_store() as store:
        t0 = time.monotonic()
        s = profile_layers(hw, sn, store)
        out["profile"] = {"elapsed_s": round(time.monotonic() - t0, 1), "records": s.measured,
                          "noisy": s.noisy, "busy": s.busy}
        log(f"profiled: {out['profile']}")
        t0 = time.monotonic()
        n = measure_for_report(t, store, a.holdout, a.subnets,
                               lambda ev: log(f"subnet {ev.done + 1}/{ev.total}"))
        out["measure"] = {"elapsed_s": round(time.monotonic() - t0, 1), "new": n}
        paired = footing.paired_ratio
        for name in ("plain", "group", "paired"):
            footing.paired_ratio = paired if name == "paired" else (  # type: ignore[assignment]
                lambda *_a, **_k: None)
            tn = api.resolve_target(hw.model_copy(update={"timer": hw.timer.model_copy(
                update={"rescale_subnets": name != "plain"})}), a.model)
            res = {}
            for stat in ("median", "min"):
                r = api.report(tn, store, n_holdout=a.holdout, statistic=stat,
                               efficiency=False)
                m = r.latency[MAIN]
                res[stat] = {"primary": m["primary"],
                             **{w: m[w] for w in (pre, dec) if w in m}}
                log(f"{name} {stat}: primary MAPE {m['primary']['mape']:.1f}%, within ±10% "
                    f"{m['primary']['within_10']:.0%}, Spearman {m['primary']['spearman']:.3f}")
            out[name] = res
        footing.paired_ratio = paired  # type: ignore[assignment]
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, default=str))
    print(f"{'':10s}{'stat':>8s}{'MAPE %':>9s}{'±10%':>7s}{'rho':>7s}  "
          f"{pre + ' MAPE':>16s}{dec + ' MAPE':>16s}")
    for name in ("plain", "group", "paired"):
        for stat, r in out[name].items():  # type: ignore[attr-defined]
            p = r["primary"]
            print(f"{name:10s}{stat:>8s}{p['mape']:9.1f}{p['within_10']:7.0%}"
                  f"{p['spearman']:7.3f}  {r.get(pre, {}).get('mape', float('nan')):16.1f}"
                  f"{r.get(dec, {}).get('mape', float('nan')):16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
