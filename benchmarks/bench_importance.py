"""Importance-ordering quality: perplexity on held-out text (LAMBADA passages, never used for
calibration) of uniformly narrowed MLPs and of the subnet without six middle layers, side by side
with a weight-norm-only ordering and with keeping the first channels.

Issue 2's bar was measured on other text, where the full model scored about 10; on LAMBADA's
fiction the full model scores about 44. Perplexity levels depend on the text, so the bar is
compared as the ratio to the full model on the same text (12/10 = 1.2 for MLP 1408 — we test the
narrower 1344 —, 22/10 for 1152, 145/10 for 768, 22/10 without layers 12-17).

    .venv/bin/python benchmarks/bench_importance.py [--tokens 8192]
"""

from __future__ import annotations

import argparse
import time

import torch

from hwnas.datasets.text import heldout_text
from hwnas.evaluation.perplexity import perplexity
from hwnas.supernet.importance import Importance, identity_importance
from hwnas.supernet.supernet import Supernet

# The bar set in issue 2: a first activation-aware attempt measured on this machine.
BAR = {"full": 10.0, "mlp 1408": 12.0, "mlp 1152": 22.0, "mlp 768": 145.0,
       "drop layers 12-17": 22.0}  # the issue gives no bar for 1344 (its bar is at 1408)


def weight_norm_importance(sn: Supernet) -> Importance:
    orders = []
    for layer in sn.model.model.layers:
        m = layer.mlp
        score = (m.gate_proj.weight.norm(dim=1) * m.up_proj.weight.norm(dim=1)
                 * m.down_proj.weight.norm(dim=0))
        orders.append(tuple(int(i) for i in torch.argsort(score, descending=True)))
    base = identity_importance(sn.arch)
    return Importance(tuple(orders), base.group_order, "weight-norm", "weights")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--no-compare", action="store_true",
                    help="only hwnas's ordering (skip weight norm and first channels)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    sn = Supernet.load("smollm2-135m", widths=[768, 960, 1152, 1344, 1408, 1536])
    text = heldout_text(400)
    space = sn.space
    cases = {"full": space.full(), "mlp 1408": space.uniform(width=1408),
             "mlp 1344": space.uniform(width=1344),
             "mlp 1152": space.uniform(width=1152), "mlp 768": space.uniform(width=768),
             "drop layers 12-17": space.uniform(drop=range(12, 18))}
    orderings = {"activation-aware (hwnas)": sn.importance}
    if not args.no_compare:
        orderings.update({"weight norm": weight_norm_importance(sn),
                          "first channels": identity_importance(sn.arch)})
    print(f"held-out perplexity, first {args.tokens} tokens of LAMBADA passages\n")
    print("| subnet | " + " | ".join(orderings) + " | hwnas / full | bar / full | ok |")
    print("|---|" + "---|" * (len(orderings) + 3))
    all_ok = True
    t0 = time.time()
    full_ppl = None
    for label, spec in cases.items():
        row = []
        for imp in orderings.values():
            sub = Supernet(sn.model, sn.tokenizer, sn.name, sn.fingerprint, imp, sn.space)
            row.append(perplexity(sub.extract(spec), sn.tokenizer, text, max_tokens=args.tokens))
            if label == "full":  # every ordering keeps everything: one is enough
                row *= len(orderings)
                break
        full_ppl = full_ppl or row[0]
        ratio = row[0] / full_ppl
        bar = BAR[label] / BAR["full"] if label in BAR else None
        ok = bar is None or ratio <= bar + 1e-9
        all_ok &= ok
        judged = "— | —" if bar is None else f"{bar:.2f} | {'yes' if ok else 'NO'}"
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in row)
              + f" | {ratio:.2f} | {judged} |", flush=True)
    print(f"\n{'all within the bar' if all_ok else 'SOME ABOVE THE BAR'} "
          f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
