"""Batched log-likelihood scoring of multiple-choice items on any causal LM.

Each item is packed into one row (a token trie: shared context and shared starts of choices
computed once; see `packing`). Rows are sorted by length and grouped into batches under a
token budget, so padding stays small; padded positions attend only to themselves. One
forward of the decoder runs per batch with a 4D attention mask and explicit position ids;
the LM head and the log-softmax run only at the positions that predict a continuation token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hwnas.datasets.tasks import Item
from hwnas.errors import InputError
from hwnas.evaluation.packing import Packed, pack_item
from hwnas.progress import Progress, ProgressEvent

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BATCH_TOKENS = 2048


def make_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Group row indices, longest first, so that rows x longest row <= budget (a row longer
    than the budget gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _decoder_and_head(model: PreTrainedModel) -> tuple[nn.Module, nn.Module]:
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    if decoder is None:
        decoder = model.base_model
    head = model.get_output_embeddings()
    if head is None or decoder is model:
        raise InputError(f"{type(model).__name__}: not a causal LM with a separate LM head; "
                         "give a LLaMA-family AutoModelForCausalLM")
    return decoder, head


def _batch_tensors(rows: Sequence[Packed], dtype: torch.dtype, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import numpy as np
    import torch

    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    allowed = np.zeros((len(rows), width, width), dtype=bool)
    allowed[:, np.arange(width), np.arange(width)] = True  # padding attends to itself
    for b, r in enumerate(rows):
        n = len(r)
        ids[b, :n] = torch.tensor(r.tokens, dtype=torch.long)
        pos[b, :n] = torch.tensor(r.positions, dtype=torch.long)
        allowed[b, :n, :n] = r.ancestors()
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(torch.from_numpy(~allowed), torch.finfo(dtype).min)
    return ids.to(device), pos.to(device), mask[:, None].to(device)


def _score_batch(decoder: nn.Module, head: nn.Module, rows: Sequence[Packed],
                 dtype: torch.dtype, device: torch.device) -> list[list[float]]:
    import torch

    ids, pos, mask = _batch_tensors(rows, dtype, device)
    hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=pos,
                     use_cache=False).last_hidden_state
    # The LM head runs once per predicting node (choices that share a start share nodes).
    nodes: dict[tuple[int, int], int] = {}
    rowcol = [nodes.setdefault((b, t[1]), len(nodes)) for b, r in enumerate(rows)
              for t in r.targets]
    b_idx, n_idx = zip(*nodes, strict=True)
    logits = head(hidden[list(b_idx), list(n_idx)]).float()
    targets = torch.tensor([t[2] for r in rows for t in r.targets], device=device)
    logp = logits.log_softmax(-1)[torch.tensor(rowcol, device=device), targets].tolist()
    out: list[list[float]] = []
    i = 0
    for r in rows:
        sums = [0.0] * r.n_requests
        for req, _, _ in r.targets:
            sums[req] += logp[i]
            i += 1
        out.append(sums)
    return out


def loglikelihoods(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                   items: Sequence[Item], *,
                   batch_tokens: int = DEFAULT_BATCH_TOKENS,
                   progress: Progress | None = None, bf16: bool = False) -> list[list[float]]:
    """Per item, the log-likelihood of each choice's continuation given its context (with
    `bf16`, the forward passes under bf16 autocast; see `hwnas.evaluation.precision`)."""
    import contextlib

    import torch

    rows = [pack_item(tokenizer, it) for it in items]
    limit = getattr(model.config, "max_position_embeddings", None)
    for n, r in enumerate(rows):
        if limit and max(r.positions, default=0) >= limit:
            raise InputError(f"item {n}: {max(r.positions) + 1} tokens, longer than the "
                             f"model's context of {limit}; use fewer few-shot examples")
    decoder, head = _decoder_and_head(model)
    param = next(model.parameters())
    results: list[list[float]] = [[] for _ in rows]
    done = 0
    fast = (torch.autocast(param.device.type, dtype=torch.bfloat16) if bf16
            else contextlib.nullcontext())
    with torch.inference_mode(), fast:
        for batch in make_batches([len(r) for r in rows], batch_tokens):
            scored = _score_batch(decoder, head, [rows[i] for i in batch], param.dtype,
                                  param.device)
            for i, s in zip(batch, scored, strict=True):
                results[i] = s
            done += len(batch)
            if progress is not None:
                progress(ProgressEvent("evaluate", done, len(rows)))
    return results
