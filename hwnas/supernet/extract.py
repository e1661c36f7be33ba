"""Cut a runnable transformers model out of the base model for a `SubnetSpec`.

Uniform specs (every kept layer with the same width and KV groups) become the stock class of
the base family; heterogeneous specs become hwnas's per-layer class (see `hetero`). Weights
are sliced by the importance ordering; the padded variant keeps stock full-width shapes and
zeroes what the spec removes (exact, but as large and as slow as the base).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from transformers.initialization import no_init_weights

from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.hetero import PREFIX, classes, hetero_config, stock_class
from hwnas.supernet.importance import Importance
from hwnas.supernet.space import SubnetSpec

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel


def _stock_config(base_config: PretrainedConfig, n_layers: int, width: int, kv_heads: int,
                  q_per_kv: int, layer_types: list[str] | None) -> PretrainedConfig:
    cfg = copy.deepcopy(base_config)
    cfg.num_hidden_layers = n_layers
    cfg.intermediate_size = width
    cfg.num_attention_heads = kv_heads * q_per_kv
    cfg.num_key_value_heads = kv_heads
    cfg.head_dim = base_config.head_dim
    if layer_types is not None:
        cfg.layer_types = layer_types
    return cfg


def subnet_config(base_config: PretrainedConfig, arch: ArchInfo,
                  spec: SubnetSpec) -> PretrainedConfig:
    base_types = getattr(base_config, "layer_types", None)
    layer_types = [base_types[i] for i in spec.layers] if base_types is not None else None
    if spec.is_uniform():
        return _stock_config(base_config, spec.num_layers, spec.intermediate_size[0],
                             spec.kv_heads[0], arch.q_per_kv, layer_types)
    per_layer = [{"intermediate_size": w, "num_attention_heads": k * arch.q_per_kv,
                  "num_key_value_heads": k}
                 for w, k in zip(spec.intermediate_size, spec.kv_heads, strict=True)]
    cfg = hetero_config(base_config, per_layer)
    if layer_types is not None:
        cfg.layer_types = layer_types
    return cfg


def layer_config(base_config: PretrainedConfig, arch: ArchInfo, width: int,
                 kv_heads: int) -> PretrainedConfig:
    """A stock config describing one decoder layer with the given choices."""
    return _stock_config(base_config, 1, width, kv_heads, arch.q_per_kv, None)


def _head_rows(groups: list[int], q_per_kv: int, head_dim: int) -> tuple[list[int], list[int]]:
    q_rows = [g * q_per_kv * head_dim + r for g in groups for r in range(q_per_kv * head_dim)]
    kv_rows = [g * head_dim + r for g in groups for r in range(head_dim)]
    return q_rows, kv_rows


def slice_state_dict(base_sd: dict[str, torch.Tensor], arch: ArchInfo, imp: Importance,
                     spec: SubnetSpec, padded: bool = False) -> dict[str, torch.Tensor]:
    """The subnet's weights, cloned (never views of the live base weights)."""
    out: dict[str, torch.Tensor] = {}
    for name, t in base_sd.items():
        if not name.startswith("model.layers."):
            out[name] = t.clone()
    for new, (old, width, kv) in enumerate(zip(spec.layers, spec.intermediate_size,
                                               spec.kv_heads, strict=True)):
        ch = torch.tensor(imp.channels(old, width))
        q_rows, kv_rows = (torch.tensor(r) for r in _head_rows(imp.groups(old, kv), arch.q_per_kv,
                                                                arch.head_dim))
        rows = {"self_attn.q_proj": q_rows, "self_attn.k_proj": kv_rows,
                "self_attn.v_proj": kv_rows, "mlp.gate_proj": ch, "mlp.up_proj": ch}
        cols = {"self_attn.o_proj": q_rows, "mlp.down_proj": ch}
        prefix = f"model.layers.{old}."
        for name, t in base_sd.items():
            if not name.startswith(prefix):
                continue
            local = name[len(prefix):]
            module, _, kind = local.rpartition(".")
            if module in rows:
                v = _keep(t, rows[module], 0, padded)
            elif module in cols and kind == "weight":
                v = _keep(t, cols[module], 1, padded)
            else:
                v = t.clone()
            out[f"model.layers.{new}.{local}"] = v
    return out


def _keep(t: torch.Tensor, idx: torch.Tensor, dim: int, padded: bool) -> torch.Tensor:
    if not padded:
        return t.index_select(dim, idx).clone()
    mask = torch.zeros(t.shape[dim], dtype=torch.bool)
    mask[idx] = True
    shape = [1] * t.dim()
    shape[dim] = -1
    return t * mask.view(shape).to(t.dtype)


def build(base_model: PreTrainedModel, arch: ArchInfo, imp: Importance, spec: SubnetSpec,
          padded: bool = False) -> PreTrainedModel:
    base_config = base_model.config
    if padded:
        full_w, full_kv = arch.intermediate_size, arch.num_kv_heads
        cfg = _stock_config(base_config, spec.num_layers, full_w, full_kv, arch.q_per_kv, None)
        base_types = getattr(base_config, "layer_types", None)
        if base_types is not None:
            cfg.layer_types = [base_types[i] for i in spec.layers]
    else:
        cfg = subnet_config(base_config, arch, spec)
    family = base_config.model_type.removeprefix(PREFIX)
    if getattr(cfg, "is_heterogeneous", False):
        cls = classes(family)[1]
    else:
        cls = stock_class(family)
    dtype = next(base_model.parameters()).dtype
    with no_init_weights():
        model = cls(cfg)
    # transformers wraps `to` with functools.wraps, which mypy reads as the unbound Module.to
    model.to(dtype)  # type: ignore[arg-type]
    sd = slice_state_dict(base_model.state_dict(), arch, imp, spec, padded=padded)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    allowed = {"lm_head.weight"} if arch.tie_embeddings else set()
    if set(missing) - allowed or unexpected:
        raise RuntimeError(f"subnet weights do not fit the subnet model: missing {missing}, "
                           f"unexpected {unexpected}")
    if arch.tie_embeddings:
        model.tie_weights()
    model.generation_config = copy.deepcopy(base_model.generation_config)
    return model.eval()
