"""Training text as fixed-length token sequences, in a seeded order that a cursor resumes.

Documents are the bundled non-evaluation passages (CoQA, SQuAD, DROP; any that overlaps an
evaluation item is left out) or a user's text/JSONL file, which is refused outright when a
document shares a 13-gram with any evaluation item (`hwnas.datasets.overlap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from hwnas.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def training_documents(text: str | None, max_documents: int | None = None
                       ) -> list[tuple[str, str]]:
    from hwnas.datasets.overlap import (
        check_documents,
        clean_training_passages,
        evaluation_index,
        read_documents,
    )

    if text is None:
        docs = list(clean_training_passages())
    else:
        docs = read_documents(Path(text).expanduser())
        check_documents(docs, evaluation_index(), str(text))
    return docs[:max_documents] if max_documents is not None else docs


def pack(docs: Sequence[tuple[str, str]], tokenizer: PreTrainedTokenizerBase,
         seq_len: int) -> torch.Tensor:
    """(n_seq, seq_len) ids: documents joined by the end-of-text token, cut into windows."""
    eos = tokenizer.eos_token_id
    parts: list[torch.Tensor] = []
    for _name, text in docs:
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
        parts.append(ids)
        if eos is not None:
            parts.append(torch.tensor([int(eos)]))
    flat = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    n = flat.numel() // seq_len
    if n == 0:
        raise InputError(f"the training text holds {flat.numel()} tokens, fewer than one "
                         f"sequence of {seq_len}; give more text or a smaller --seq-len")
    return flat[:n * seq_len].view(n, seq_len).long()


@dataclass
class Batches:
    """Seeded epochs over the sequences; `cursor` counts sequences handed out so far."""

    sequences: torch.Tensor
    seed: int
    cursor: int = 0

    def _order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.sequences.shape[0], generator=g)

    def next(self, batch: int) -> torch.Tensor:
        n = self.sequences.shape[0]
        rows = []
        for _ in range(batch):
            epoch, pos = divmod(self.cursor, n)
            rows.append(int(self._order(epoch)[pos]))
            self.cursor += 1
        return self.sequences[torch.tensor(rows)]
