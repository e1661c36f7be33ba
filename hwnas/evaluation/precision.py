"""Scoring precision: exact, or bf16 matmuls with the close calls re-scored exactly.

``bf16-checked`` runs the multiple-choice forward passes under bf16 autocast (2-3x the fp32
matmul rate on CPUs with AVX512-BF16 or AMX), then re-scores in the model's own precision
every item whose decision is close: where, under any of the task's metrics, the best
choice leads the next by less than ``RECHECK_MARGIN`` of their scores' magnitude. bf16's
error on a choice's summed log-likelihood is about 0.2-2% of it (measured on PIQA, ARC-Easy
and HellaSwag with the embedded model: p99 1.0-1.8%), and a decision flips only where the
two scores' errors differ by more than their gap, so the items it could flip are exactly the
close ones. On 1,100 items of those tasks, a 1% margin re-scored 6-15% of the items and
every decision (acc and acc_norm) equalled fp32's.

``auto`` (the default) is ``bf16-checked`` for an fp32 model on a CPU with native bf16, and
``exact`` otherwise. The mode is part of an evaluation's cache key (exact keys are unchanged).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hwnas.datasets.tasks import Item
from hwnas.errors import InputError
from hwnas.evaluation import metrics
from hwnas.evaluation.scoring import loglikelihoods
from hwnas.progress import Progress

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PRECISIONS = ("auto", "exact", "bf16-checked")
EXACT, CHECKED = "exact", "bf16-checked"
RECHECK_MARGIN = 0.01


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (oneDNN's check: AVX512-BF16 or AMX)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve(setting: str, dtype: str) -> str:
    """The mode `setting` means for a model of `dtype` on this machine: exact or checked."""
    if setting not in PRECISIONS:
        raise InputError(f"--precision {setting!r}: choose one of {', '.join(PRECISIONS)}")
    if setting == "auto":
        return CHECKED if dtype == "fp32" and native_bf16() else EXACT
    if setting == CHECKED and dtype != "fp32":
        raise InputError(f"--precision bf16-checked with --dtype {dtype}: the check re-scores "
                         "in fp32; use --dtype fp32, or --precision exact")
    return setting


def close_call(metric: str, item: Item, ll: Sequence[float],
               margin: float = RECHECK_MARGIN) -> bool:
    """Whether the best choice under `metric` leads the next by less than `margin` of the
    two scores' mean magnitude (a decision bf16's error could flip)."""
    if len(ll) < 2:
        return False
    s = np.sort(metrics.choice_scores(metric, item, ll))[::-1]
    return bool(s[0] - s[1] < margin * (abs(s[0]) + abs(s[1])) / 2)


def checked_loglikelihoods(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                           items: Sequence[Item], metric_names: Sequence[str], *,
                           batch_tokens: int, progress: Progress | None = None,
                           margin: float = RECHECK_MARGIN) -> tuple[list[list[float]], int]:
    """Per item, its choices' log-likelihoods: bf16 autocast, with the items whose decision
    is close under any of `metric_names` re-scored exactly. Also the number re-scored."""
    lls = loglikelihoods(model, tokenizer, items, batch_tokens=batch_tokens, progress=progress,
                         bf16=True)
    close = [i for i, (it, ll) in enumerate(zip(items, lls, strict=True))
             if any(close_call(m, it, ll, margin) for m in metric_names)]
    if close:
        exact = loglikelihoods(model, tokenizer, [items[i] for i in close],
                               batch_tokens=batch_tokens)
        for i, ll in zip(close, exact, strict=True):
            lls[i] = ll
    return lls, len(close)
