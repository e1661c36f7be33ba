"""Crash safety for real: `kill -9` during `hwnas profile` on the real backend, then a re-run;
the final store must hold exactly the keys of an uninterrupted run (no duplicates).

Uses the real SmolLM2 shape and torch fp32 on this CPU, with the default profile cut down to
its two primary workloads so the two runs take a few minutes. Keys depend on the spec, the
machine's fingerprint and the protocol, not on the timings, so the uninterrupted reference
and the resumed store must agree exactly.

    .venv/bin/python benchmarks/bench_profile_crash.py [--kill-after 12]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

RUN = ("import importlib.util, sys, hwnas.cli as c; "
       "c.COMMAND_MODULES = tuple(m for m in c.COMMAND_MODULES if importlib.util.find_spec(m)); "
       "sys.exit(c.main(sys.argv[1:]))")


def rows(cache: Path) -> list[tuple[str, str]]:
    try:
        db = sqlite3.connect(cache / "store.sqlite")
        return sorted(db.execute("SELECT key, kind FROM measurements").fetchall())
    except sqlite3.OperationalError:
        return []


def cmd(cache: Path, hw: Path) -> list[str]:
    return [sys.executable, "-c", RUN, "--cache-dir", str(cache), "profile", "--hw", str(hw),
            "--model", "smollm2-135m", "--json", "--force"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kill-after", type=int, default=12, help="records before kill -9")
    args = ap.parse_args()
    from hwnas.hw_profiles import dump_profile, load_profile
    from hwnas.supernet.models import resolve

    resolve("smollm2-135m")  # the config lives in the default cache
    models = Path.home() / ".cache" / "hwnas" / "models"
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-crash-"))
    hw = load_profile("cpu-torch-fp32")
    cut = hw.model_copy(update={"name": "cpu-torch-fp32-crash", "workloads":
                                hw.workloads.model_copy(update={
                                    "prefill": (128,), "decode": hw.workloads.decode[:1]})})
    hw_file = tmp / "cpu-torch-fp32-crash.yaml"
    hw_file.write_text(dump_profile(cut))
    assert yaml.safe_load(hw_file.read_text())["name"] == cut.name
    caches = {k: tmp / k for k in ("reference", "crashed")}
    for c in caches.values():
        c.mkdir()
        (c / "models").symlink_to(models)

    t0 = time.monotonic()
    ref = subprocess.run(cmd(caches["reference"], hw_file), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    expected = rows(caches["reference"])

    proc = subprocess.Popen(cmd(caches["crashed"], hw_file), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while len(rows(caches["crashed"])) < args.kill_after and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = len(rows(caches["crashed"]))
    again = subprocess.run(cmd(caches["crashed"], hw_file), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    final = rows(caches["crashed"])
    result = {"planned": summary["total"], "records_at_kill": at_kill,
              "kill_returncode": proc.returncode, "rerun_already": summary["already"],
              "rerun_measured": summary["measured"], "reference_records": len(expected),
              "final_records": len(final), "same_keys_as_reference": final == expected,
              "duplicates": len(final) - len({k for k, _ in final}),
              "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(result, indent=2))
    ok = final == expected and proc.returncode == -signal.SIGKILL and 0 < at_kill < len(final)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
