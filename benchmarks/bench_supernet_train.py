"""Does a short super-network training run shrink the subnets' gap to the full model?

Trains `hwnas supernet train` for `--minutes` on the real model, then measures the same 20
subnets as `bench_repair.py` (same seed and levels, no repair) on LAMBADA held-out text,
before and after: the mean gap in log-perplexity to the *original* full model, and to the
trained full path. `--before FILE` reuses the "before" figures from a saved
`bench_repair.py` JSON summary or an earlier run of this benchmark (same --tokens and
--subnets) instead of measuring them again.

    nice -n 10 .venv/bin/python benchmarks/bench_supernet_train.py --minutes 3 --out DIR
    .venv/bin/python benchmarks/bench_supernet_train.py --trained RUN/snapshot-10min
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from hwnas.datasets.text import heldout_text
from hwnas.evaluation.perplexity import perplexity
from hwnas.supernet.supernet import Supernet
from hwnas.supernet.train import TrainConfig, train
from hwnas.supernet.train.loop import INFO_FILE

try:
    from benchmarks.bench_repair import bench_specs
except ImportError:  # run as a script from the repository root
    from bench_repair import bench_specs  # type: ignore[no-redef]


def _ppls(sn: Supernet, specs: list, text: str, tokens: int) -> list[float]:  # type: ignore[type-arg]
    out = []
    for spec in specs:
        out.append(perplexity(sn.extract(spec), sn.tokenizer, text, max_tokens=tokens))
        print(f"  ppl {out[-1]:.2f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", default=None, help="where to train (unless --trained)")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--random-subnets", type=int, default=1)
    ap.add_argument("--subnets", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--before", type=Path, default=None)
    ap.add_argument("--trained", default=None, help="measure this trained super-network "
                    "directory (e.g. a run's snapshot-10min) instead of training one")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.trained is None and args.out is None:
        ap.error("give --out DIR to train, or --trained DIR to measure a trained one")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    base = Supernet.load(args.model)
    specs = bench_specs(base.space, args.subnets)
    text = heldout_text()
    if args.before is not None:
        saved = json.loads(args.before.read_text())
        if "ppl_before" in saved:  # an earlier run of this benchmark: its "before" figures
            assert saved["heldout_tokens"] == args.tokens
            assert len(saved["ppl_before"]) == args.subnets
            full0 = float(saved["full_ppl_original"])
            before = [float(v) for v in saved["ppl_before"]]
        else:  # a bench_repair.py summary
            assert saved["heldout_tokens"] == args.tokens and saved["subnets"] == args.subnets
            full0 = float(saved["full_ppl"])
            before = [float(r["ppl_none"]) for r in saved["rows"]]
    else:
        full0 = perplexity(base.model, base.tokenizer, text, max_tokens=args.tokens)
        before = _ppls(base, specs, text, args.tokens)
    if args.trained is None:
        cfg = TrainConfig(model=args.model, out=args.out, minutes=args.minutes, lr=args.lr,
                          seq_len=args.seq_len, batch=args.batch,
                          random_subnets=args.random_subnets, progress=False)
        res = train(cfg, sn=base).to_dict()
        print(f"trained: {res}", flush=True)
    else:
        info = json.loads((Path(args.trained) / INFO_FILE).read_text())
        res = {k: info[k] for k in ("steps", "tokens", "seconds")}
        res["config"] = info["config"]
    trained = Supernet.load(args.trained or args.out)
    full1 = perplexity(trained.model, trained.tokenizer, text, max_tokens=args.tokens)
    after = _ppls(trained, specs, text, args.tokens)
    gap0 = float(np.mean([math.log(p / full0) for p in before]))
    gap1 = float(np.mean([math.log(p / full0) for p in after]))
    gap1_own = float(np.mean([math.log(p / full1) for p in after]))
    print(json.dumps({
        "model": args.model, "trained": args.trained or args.out, "train": res,
        "tokens_per_s": res["tokens"] / max(res["seconds"], 1e-9),
        "heldout_tokens": args.tokens,
        "full_ppl_original": full0, "full_ppl_trained": full1,
        "mean_logppl_gap_before": gap0, "mean_logppl_gap_after": gap1,
        "mean_logppl_gap_after_vs_trained_full": gap1_own,
        "gap_shrink": 1 - gap1 / gap0, "ppl_before": before, "ppl_after": after,
        "seconds": time.perf_counter() - t0}, indent=1))


if __name__ == "__main__":
    main()
