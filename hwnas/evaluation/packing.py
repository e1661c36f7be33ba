"""Tokenise an item's scoring requests the way lm-evaluation-harness does, and pack them into
one row that computes every distinct token prefix once.

Tokenisation follows lm-eval's ``_encode_pair``: trailing spaces of the context move to the
continuation; the context is encoded alone and the continuation is what the whole string's
encoding has after the context's tokens. An empty context becomes the BOS (else EOS) token.

Packing: a request's model input is its context and its continuation less the last token.
The inputs of an item's requests form a token trie (a shared question is laid out once, and
so is the shared start of two choices, as in PIQA); each trie node is one position of the
row, attends to its ancestors and itself only, and has the position id of its depth. Every
node's hidden state is therefore exactly what the unpacked request would compute there, and
each continuation token is scored from the node of the token before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwnas.datasets.tasks import Item
from hwnas.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Packed:
    tokens: tuple[int, ...]
    parents: tuple[int, ...]  # index of the node's parent in the row, -1 for a root
    positions: tuple[int, ...]  # depth in the trie = position id
    # one entry per scored token: (request index, index of the predicting node, target id)
    targets: tuple[tuple[int, int, int], ...]
    n_requests: int

    def __len__(self) -> int:
        return len(self.tokens)

    def ancestors(self) -> NDArray[np.bool_]:
        """Boolean (n, n) matrix: node i may attend to node j."""
        import numpy as np

        n = len(self.tokens)
        allowed = np.zeros((n, n), dtype=bool)
        for i, p in enumerate(self.parents):  # parents come before their children
            if p >= 0:
                allowed[i] = allowed[p]
            allowed[i, i] = True
        return allowed


def _fallback_token(tokenizer: PreTrainedTokenizerBase) -> int:
    tid = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else None
    tid = tid if tid is not None else tokenizer.eos_token_id
    if tid is None:
        raise InputError("the tokenizer has neither a BOS nor an EOS token to stand in for an "
                         "empty context; give every task item a non-empty context")
    return int(tid)


def encode_requests(tokenizer: PreTrainedTokenizerBase, requests: Sequence[tuple[str, str]]
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


def pack(encoded: Sequence[tuple[list[int], list[int]]]) -> Packed:
    tokens: list[int] = []
    parents: list[int] = []
    positions: list[int] = []
    children: dict[tuple[int, int], int] = {}
    targets = []
    for r, (ctx, cont) in enumerate(encoded):
        if not cont:
            raise ValueError("a choice's continuation encodes to no tokens")
        path, node = [], -1
        for depth, tok in enumerate(ctx + cont[:-1]):
            nxt = children.get((node, tok))
            if nxt is None:
                nxt = children[(node, tok)] = len(tokens)
                tokens.append(tok)
                parents.append(node)
                positions.append(depth)
            path.append(nxt)
            node = nxt
        for j, target in enumerate(cont):
            targets.append((r, path[len(ctx) - 1 + j], target))
    return Packed(tuple(tokens), tuple(parents), tuple(positions), tuple(targets),
                  len(encoded))


def pack_item(tokenizer: PreTrainedTokenizerBase, item: Item) -> Packed:
    encoded = encode_requests(tokenizer, item.requests)
    for (context, continuation), (_, cont) in zip(item.requests, encoded, strict=True):
        if not cont:
            raise InputError(f"task item with context {context[-40:]!r}: the choice "
                             f"{continuation[:40]!r} encodes to no tokens with this model's "
                             "tokenizer; give every choice text the tokenizer keeps")
    return pack(encoded)
