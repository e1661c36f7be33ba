"""Run a subnet on the super-network's own parameters, so gradients reach the shared weights.

Inside `subnet_view(model, arch, importance, spec)` a forward of `model` computes exactly the
subnet that `extract` would cut: dropped layers are left out of the layer list, MLP channels
and attention heads outside the importance prefix are masked to zero at the inputs of
`down_proj` and `o_proj` (which removes them exactly: a removed KV group feeds only its own,
masked, query heads). Masked weights receive zero gradient.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn

from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.importance import Importance
from hwnas.supernet.space import SubnetSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def _mask(size: int, keep: list[int], device: torch.device) -> torch.Tensor:
    m = torch.zeros(size, device=device)
    m[torch.tensor(keep, dtype=torch.long)] = 1.0
    return m


@contextmanager
def subnet_view(model: PreTrainedModel, arch: ArchInfo, imp: Importance,
                spec: SubnetSpec | None) -> Iterator[PreTrainedModel]:
    if spec is None:  # the full network
        yield model
        return
    inner = model.model
    layers = inner.layers
    device = next(model.parameters()).device
    hooks = []
    for i, w, kv in zip(spec.layers, spec.intermediate_size, spec.kv_heads, strict=True):
        layer = layers[i]
        if w < arch.intermediate_size:
            cm = _mask(arch.intermediate_size, imp.channels(i, w), device)

            def mlp_pre(_m: nn.Module, args: tuple[torch.Tensor, ...],
                        cm: torch.Tensor = cm) -> tuple[torch.Tensor, ...]:
                return (args[0] * cm.to(args[0].dtype),)
            hooks.append(layer.mlp.down_proj.register_forward_pre_hook(mlp_pre))
        if kv < arch.num_kv_heads:
            heads = [g * arch.q_per_kv + q for g in imp.groups(i, kv) for q in range(arch.q_per_kv)]
            hm = _mask(arch.num_q_heads, heads, device).repeat_interleave(arch.head_dim)

            def attn_pre(_m: nn.Module, args: tuple[torch.Tensor, ...],
                         hm: torch.Tensor = hm) -> tuple[torch.Tensor, ...]:
                return (args[0] * hm.to(args[0].dtype),)
            hooks.append(layer.self_attn.o_proj.register_forward_pre_hook(attn_pre))
    inner.layers = nn.ModuleList([layers[i] for i in spec.layers])
    try:
        yield model
    finally:
        inner.layers = layers
        for h in hooks:
            h.remove()
