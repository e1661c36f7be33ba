"""Low-rank adapters for super-network training (`hwnas supernet train --lora`).

Each linear layer of the decoder blocks keeps its weight frozen and learns a low-rank update
`scale * B @ A` (B starts at zero, so training starts from the base model). The teacher is the
same model with its adapters switched off (`adapters_off`), so teacher and student share one
copy of the frozen weights and the optimiser keeps moments only for the adapters: for a
7B-class model, one set of weights instead of two plus AdamW's two moments of every weight.

Subnets stay exact: the view (`hwnas.supernet.train.view`) masks the inputs of `down_proj`
and `o_proj`, which masks the adapter's path as well, and the merged weight `W + scale * B @ A`
sliced to a subnet's channels is what the masked forward computed. A published model holds the
merged weights under the base model's own names (`merged_state_dict`): a plain Hugging Face
model directory, like a run without adapters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    """`base(x) + scale * (x @ A.T) @ B.T`, the base frozen; `enabled` False gives `base(x)`."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        self.enabled = True
        w = base.weight
        self.lora_a = nn.Parameter(torch.empty(rank, w.shape[1], dtype=w.dtype, device=w.device))
        self.lora_b = nn.Parameter(torch.zeros(w.shape[0], rank, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.base(x)
        if not self.enabled:
            return y
        a, b = self.lora_a.to(x.dtype), self.lora_b.to(x.dtype)
        return y + (x @ a.t() @ b.t()) * self.scale

    def merged_weight(self) -> torch.Tensor:
        """The base weight with the update folded in, in the base weight's dtype."""
        w = self.base.weight
        delta = (self.lora_b.float() @ self.lora_a.float()) * self.scale
        return (w.float() + delta).to(w.dtype)


def add_adapters(model: nn.Module, rank: int, alpha: float,
                 targets: tuple[str, ...] = TARGETS) -> list[str]:
    """Freeze every parameter of `model`, then wrap each target linear layer of its decoder
    blocks in a `LoRALinear` (its adapters trainable). Returns the wrapped modules' names."""
    model.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(module, child_name, LoRALinear(child, rank, alpha))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise ValueError(f"no linear layer named {', '.join(targets)} to adapt")
    return wrapped


def adapters(model: nn.Module) -> Iterator[LoRALinear]:
    return (m for m in model.modules() if isinstance(m, LoRALinear))


@contextmanager
def adapters_off(model: nn.Module) -> Iterator[nn.Module]:
    """The base model, for the teacher's forward: every adapter switched off."""
    mods = list(adapters(model))
    for m in mods:
        m.enabled = False
    try:
        yield model
    finally:
        for m in mods:
            m.enabled = True


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under the base model's names, each adapter folded into its
    weight; the model itself is left as it is."""
    merged: dict[str, torch.Tensor] = {}
    wrapped: set[str] = set()  # the adapted modules' own keys (base.*, lora_*)
    for name, m in model.named_modules():
        if isinstance(m, LoRALinear):
            wrapped.update(f"{name}.{k}" for k in m.state_dict())
            merged[f"{name}.weight"] = m.merged_weight().detach()
            if m.base.bias is not None:
                merged[f"{name}.bias"] = m.base.bias.detach()
    return {**{k: v for k, v in model.state_dict().items() if k not in wrapped}, **merged}
