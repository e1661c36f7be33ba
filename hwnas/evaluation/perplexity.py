"""Perplexity of a causal LM on text, in non-overlapping windows (every token scored once)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@torch.inference_mode()
def perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: str,
               window: int = 512,
               max_tokens: int | None = None) -> float:
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if ids.numel() < 2:
        raise ValueError("perplexity needs at least two tokens of text")
    device = next(model.parameters()).device
    nll, count = 0.0, 0
    for start in range(0, ids.numel() - 1, window):
        chunk = ids[start:start + window + 1].to(device)
        if chunk.numel() < 2:
            break
        logits = model(chunk[None, :-1]).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        nll -= logp.gather(1, chunk[1:, None]).sum().item()
        count += chunk.numel() - 1
    return math.exp(nll / count)
