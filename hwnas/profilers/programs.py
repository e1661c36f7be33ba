"""What is run: small torch modules plus example inputs for each kind of timed thing.

A `Program` is backend-neutral (fp32, on the CPU); a backend turns it into something it can
time (cast, quantise, move to a GPU, export to ONNX). Every module takes its KV cache and
rotary tables as plain tensors, so the same module runs eagerly and exports with the dynamo
exporter, with the past keys and values as graph inputs for decode.

- `LayerStep`: one stock decoder layer (`LlamaDecoderLayer` & co.) on precomputed rotary
  tables; decode concatenates the new key/value onto the past like `DynamicCache.update`.
- `LayerChain`: `units` such layers with distinct weights (and pasts), each feeding the next,
  so a layer is timed in context: its weights are cold when it runs, as inside the model,
  instead of staying in the last-level cache between calls of one layer alone.
- `EmbedStep`: the token embedding. `HeadStep`: the final norm over every position and the
  LM head on the last one (what `generate` computes).
- `SubnetStep`: a whole extracted model, built from its own modules, with explicit caches.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from hwnas.errors import InputError
from hwnas.profilers.measurement import TimingSpec
from hwnas.supernet.arch import ArchInfo

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from hwnas.hw_profiles.schema import TimerSettings

MAX_CHAIN = 8  # the default of `timer.max_chain`: tiny layers would chain thousands

_FAMILY_MODULES = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2"}


@dataclass
class Program:
    spec: TimingSpec
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...] = ("out",)
    units: int = 1  # copies of the timed thing one call runs; a record holds time per copy


class _TensorCache:
    """The one method of a transformers `Cache` a decoder layer calls, on plain tensors."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor) -> None:
        self.k, self.v = k, v

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int,
               *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = torch.cat([self.k, key_states], dim=-2)
        self.v = torch.cat([self.v, value_states], dim=-2)
        return self.k, self.v


class LayerStep(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                past_k: torch.Tensor | None = None,
                past_v: torch.Tensor | None = None) -> torch.Tensor:
        cache = None if past_k is None or past_v is None else _TensorCache(past_k, past_v)
        out: torch.Tensor = self.layer(hidden, position_embeddings=(cos, sin), cache=cache)
        return out


class LayerChain(nn.Module):
    """Decoder layers run one after another, each with its own past (decode)."""

    def __init__(self, steps: list[nn.Module]) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def forward(self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                *past: torch.Tensor) -> torch.Tensor:
        for i, step in enumerate(self.steps):
            hidden = step(hidden, cos, sin, *past[2 * i:2 * i + 2])
        return hidden


class EmbedStep(nn.Module):
    def __init__(self, embed: nn.Module) -> None:
        super().__init__()
        self.embed = embed

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.embed(input_ids)
        return out


class HeadStep(nn.Module):
    def __init__(self, norm: nn.Module, lm_head: nn.Module) -> None:
        super().__init__()
        self.norm, self.lm_head = norm, lm_head

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.lm_head(self.norm(hidden)[:, -1:, :])
        return out


class SubnetStep(nn.Module):
    """embed -> rotary -> every kept layer (each with its own past) -> norm -> LM head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        inner = model.get_submodule("model")
        self.embed = inner.get_submodule("embed_tokens")
        self.rotary = inner.get_submodule("rotary_emb")
        self.norm = inner.get_submodule("norm")
        self.layers = cast(nn.ModuleList, inner.get_submodule("layers"))
        self.lm_head = model.get_submodule("lm_head")

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor,
                *past: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids)
        cos, sin = self.rotary(h, position_ids)
        for i, layer in enumerate(self.layers):
            cache = _TensorCache(past[2 * i], past[2 * i + 1]) if past else None
            h = layer(h, position_embeddings=(cos, sin), cache=cache)
        out: torch.Tensor = self.lm_head(self.norm(h)[:, -1:, :])
        return out


def family_class(family: str, suffix: str) -> type[nn.Module]:
    cap = _FAMILY_MODULES.get(family)
    if cap is None:
        raise InputError(f"model family '{family}' has no profiler module; supported: "
                         f"{', '.join(_FAMILY_MODULES)}")
    mod = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    cls: type[nn.Module] = getattr(mod, f"{cap}{suffix}")
    return cls


def _with_sdpa(config: PretrainedConfig) -> PretrainedConfig:
    cfg = copy.deepcopy(config)
    if getattr(cfg, "_attn_implementation", None) in (None, "eager"):
        cfg._attn_implementation = "sdpa"
    return cfg


def build_layer(arch: ArchInfo, layer_config: PretrainedConfig, seed: int = 0) -> nn.Module:
    """One decoder layer of the given config, random weights (latency ignores weights)."""
    torch.manual_seed(seed)
    cfg = _with_sdpa(layer_config)
    layer = family_class(arch.family, "DecoderLayer")(cfg, layer_idx=0)
    return LayerStep(layer).eval()


def rotary_tables(arch: ArchInfo, config: PretrainedConfig, positions: torch.Tensor,
                  batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    rope = family_class(arch.family, "RotaryEmbedding")(config=_with_sdpa(config))
    x = torch.zeros(batch, 1, arch.hidden_size)
    with torch.no_grad():
        cos, sin = rope(x, positions.expand(batch, -1))
    return cos, sin


def layer_inputs(arch: ArchInfo, config: PretrainedConfig, spec: TimingSpec,
                 copies: int = 1) -> tuple[torch.Tensor, ...]:
    """hidden, cos, sin, then (decode) a past key and value for each of `copies` layers."""
    g = torch.Generator().manual_seed(1)
    b, t, ctx = spec.batch, spec.tokens, spec.context
    hidden = torch.randn(b, t, arch.hidden_size, generator=g)
    cos, sin = rotary_tables(arch, config, torch.arange(ctx, ctx + t)[None], b)
    if spec.phase == "prefill":
        return hidden, cos, sin
    kv = spec.kv_heads or arch.num_kv_heads
    past = [torch.randn(b, kv, ctx, arch.head_dim, generator=g) for _ in range(2 * copies)]
    return (hidden, cos, sin, *past)


def layer_program(arch: ArchInfo, config: PretrainedConfig,
                  layers: nn.Module | Sequence[nn.Module], spec: TimingSpec) -> Program:
    """One layer alone, or (a sequence of several) a `LayerChain` timed per layer."""
    steps = [layers] if isinstance(layers, nn.Module) else list(layers)
    if not steps:
        raise ValueError("layer_program needs at least one layer")
    module = steps[0] if len(steps) == 1 else LayerChain(steps).eval()
    names: tuple[str, ...] = ("hidden", "cos", "sin")
    if spec.phase == "decode":
        names += (("past_k", "past_v") if len(steps) == 1 else
                  tuple(f"past_{kv}{i}" for i in range(len(steps)) for kv in "kv"))
    return Program(spec, module, layer_inputs(arch, config, spec, len(steps)), names,
                   units=len(steps))


DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}


def build_layer_chain(arch: ArchInfo, layer_config: PretrainedConfig, dtype: str,
                      cache_bytes: int, timer: TimerSettings) -> list[nn.Module]:
    """Copies of one layer variant (distinct weights) enough to exceed the last-level cache
    `timer.in_context` times over, at most `timer.max_chain` (`chain_length`), so each is
    timed with its weights cold."""
    first = build_layer(arch, layer_config)
    nbytes = sum(p.numel() for p in first.parameters()) * DTYPE_BYTES.get(dtype, 4)
    k = chain_length(nbytes, cache_bytes, timer.in_context, timer.max_chain)
    return [first] + [build_layer(arch, layer_config, seed=i) for i in range(1, k)]


def chain_length(layer_bytes: int, cache_bytes: int, multiple: float,
                 most: int = MAX_CHAIN) -> int:
    """How many copies of a layer to chain so that their weights exceed `multiple` times the
    last-level cache (at least 1, at most `most`); `multiple` 0 means one layer alone."""
    if multiple <= 0 or layer_bytes <= 0:
        return 1
    return max(1, min(most, -(-int(multiple * cache_bytes) // layer_bytes)))


def embed_program(arch: ArchInfo, config: PretrainedConfig, spec: TimingSpec) -> Program:
    torch.manual_seed(0)
    ids = torch.randint(0, arch.vocab_size, (spec.batch, spec.tokens),
                        generator=torch.Generator().manual_seed(2))
    return Program(spec, EmbedStep(nn.Embedding(arch.vocab_size, arch.hidden_size)).eval(),
                   (ids,), ("input_ids",))


def head_program(arch: ArchInfo, config: PretrainedConfig, spec: TimingSpec) -> Program:
    torch.manual_seed(0)
    norm = family_class(arch.family, "RMSNorm")(arch.hidden_size,
                                               eps=getattr(config, "rms_norm_eps", 1e-6))
    head = nn.Linear(arch.hidden_size, arch.vocab_size, bias=False)
    hidden = torch.randn(spec.batch, spec.tokens, arch.hidden_size,
                         generator=torch.Generator().manual_seed(3))
    return Program(spec, HeadStep(norm, head).eval(), (hidden,), ("hidden",))


def subnet_program(model: nn.Module, arch: ArchInfo, kv_heads: tuple[int, ...],
                   spec: TimingSpec) -> Program:
    """The whole extracted model for one workload; decode gets a past of `context` positions
    for every kept layer (its own KV-group count)."""
    b, t, ctx = spec.batch, spec.tokens, spec.context
    model = model.float()  # backends convert from fp32 (cast, quantise, export)
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(0, arch.vocab_size, (b, t), generator=g)
    pos = torch.arange(ctx, ctx + t)[None].expand(b, -1).contiguous()
    inputs: list[torch.Tensor] = [ids, pos]
    names = ["input_ids", "position_ids"]
    if spec.phase == "decode":
        for i, kv in enumerate(kv_heads):
            inputs += [torch.randn(b, kv, ctx, arch.head_dim, generator=g) for _ in range(2)]
            names += [f"past_k{i}", f"past_v{i}"]
    return Program(spec, SubnetStep(model).eval(), tuple(inputs), tuple(names), ("logits",))


def check_positions(config: PretrainedConfig, spec: TimingSpec, source: str) -> None:
    """An impossible workload (more positions than the model has) is the user's to fix."""
    limit = getattr(config, "max_position_embeddings", None)
    need = spec.context + spec.tokens
    if limit is not None and need > int(limit):
        label = workload_name(spec)
        raise InputError(f"{source}: workload {label} needs {need} positions but the model "
                         f"has max_position_embeddings={limit}; lower it in the profile's "
                         "workloads")


def workload_name(spec: TimingSpec) -> str:
    return f"prefill@{spec.tokens}" if spec.phase == "prefill" else f"decode@{spec.context}"
