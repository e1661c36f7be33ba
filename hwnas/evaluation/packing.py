"""Tokenise an item's scoring requests the way lm-evaluation-harness does, and pack them into
one row that shares the common context.

Tokenisation follows lm-eval's ``_encode_pair``: trailing spaces of the context move to the
continuation; the context is encoded alone and the continuation is what the whole string's
encoding has after the context's tokens. An empty context becomes the BOS (else EOS) token.

Packing: the requests' longest common token prefix (for most tasks, the whole question) is
laid out once, followed by one *branch* per request (its own context tokens past the prefix,
then its continuation less the last token). Every branch sees the prefix and itself, never
another branch, and its position ids continue from the prefix, so each continuation is scored
exactly as if its request ran alone, at a fraction of the tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwnas.datasets.tasks import Item

PREFIX = -1  # segment id of the shared prefix; branches are 0..k-1


@dataclass(frozen=True)
class Packed:
    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    segments: tuple[int, ...]  # PREFIX or the request index
    # one entry per scored token: (request index, index of the predicting token, target id)
    targets: tuple[tuple[int, int, int], ...]
    n_requests: int

    def __len__(self) -> int:
        return len(self.tokens)


def _fallback_token(tokenizer: Any) -> int:
    tid = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else None
    tid = tid if tid is not None else tokenizer.eos_token_id
    if tid is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to stand in for an "
                         "empty context")
    return int(tid)


def encode_requests(tokenizer: Any, requests: Sequence[tuple[str, str]]
                    ) -> list[tuple[list[int], list[int]]]:
    """(context tokens, continuation tokens) per request, as lm-eval computes them."""
    pairs, texts = [], []
    for context, continuation in requests:
        n = len(context) - len(context.rstrip())
        if n:
            context, continuation = context[:-n], context[-n:] + continuation
        pairs.append((context, continuation))
        if context:
            texts += [context, context + continuation]
    enc = iter(tokenizer(texts)["input_ids"]) if texts else iter(())
    out = []
    for context, continuation in pairs:
        if context:
            ctx, whole = list(next(enc)), list(next(enc))
            out.append((ctx, whole[len(ctx):]))
        else:
            out.append(([_fallback_token(tokenizer)],
                        list(tokenizer(continuation)["input_ids"])))
    return out


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for i in range(n):
        if any(s[i] != first[i] for s in seqs[1:]):
            return i
    return n


def pack(encoded: Sequence[tuple[list[int], list[int]]]) -> Packed:
    p = _common_prefix([ctx for ctx, _ in encoded])
    shared = encoded[0][0][:p]
    tokens, positions, segments = list(shared), list(range(p)), [PREFIX] * p
    targets = []
    for r, (ctx, cont) in enumerate(encoded):
        if not cont:
            raise ValueError("a choice's continuation encodes to no tokens")
        branch = ctx[p:] + cont[:-1]
        start = len(tokens)
        tokens += branch
        positions += range(p, p + len(branch))
        segments += [r] * len(branch)
        own = len(ctx) - p  # branch tokens that are context
        for j, target in enumerate(cont):
            k = own + j - 1  # branch offset of the token that predicts cont[j]
            pred = start + k if k >= 0 else p - 1
            targets.append((r, pred, target))
    return Packed(tuple(tokens), tuple(positions), tuple(segments), tuple(targets),
                  len(encoded))


def pack_item(tokenizer: Any, item: Item) -> Packed:
    return pack(encode_requests(tokenizer, item.requests))
