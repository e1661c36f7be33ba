"""What `import hwnas` costs, against an earlier revision, side by side in one run.

Each round runs a fresh interpreter per checkout, interleaved (this tree, then the baseline),
and times `import hwnas` inside it; the script also says whether torch and transformers were
imported. The baseline revision is checked out into a temporary git worktree and put first on
`PYTHONPATH`, so both run with this venv's libraries.

    .venv/bin/python benchmarks/bench_import_cost.py --baseline 9da960d --rounds 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys, time, json; t = time.perf_counter(); import hwnas; "
         "dt = time.perf_counter() - t; print(json.dumps({'s': dt, 'file': hwnas.__file__, "
         "'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules}))")


def probe(path: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, cwd=tempfile.gettempdir(),
                         env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"})
    got: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    if not str(got["file"]).startswith(str(path)):
        raise SystemExit(f"imported {got['file']}, not the checkout at {path}")
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="9da960d", help="git revision to compare against")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base),
                        args.baseline], check=True)
        try:
            runs: dict[str, list[dict[str, object]]] = {"this tree": [], args.baseline: []}
            for _ in range(args.rounds):
                runs["this tree"].append(probe(ROOT))
                runs[args.baseline].append(probe(base))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=True)
    rows = {}
    for name, rs in runs.items():
        secs = [float(str(r["s"])) for r in rs]
        rows[name] = {"median_s": statistics.median(secs), "min_s": min(secs),
                      "torch": rs[0]["torch"], "transformers": rs[0]["transformers"]}
    ratio = rows[args.baseline]["median_s"] / rows["this tree"]["median_s"]
    print("| checkout | median s | min s | imports torch | imports transformers |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['torch']} | "
              f"{r['transformers']} |")
    print(f"baseline / this tree (median): {ratio:.0f}x")
    print(json.dumps({"rounds": args.rounds, "rows": rows, "ratio": ratio}))


if __name__ == "__main__":
    main()
