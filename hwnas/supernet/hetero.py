"""Heterogeneous LLaMA-family models: each decoder layer with its own MLP width and head count.

transformers 5.24 can save and read per-layer configs (`per_layer_config`), but its Llama,
Mistral and Qwen2 modelling code still builds every layer from the global config (upstream
PR #45332). Until that lands, hwnas registers, for each family, a small config subclass
(`model_type` "hwnas_<family>") and a model class that builds each stock decoder layer from
`config.per_layer_config[i]`. The on-disk format is the upstream one, so switching to stock
transformers is a one-line change (the `model_type`). It is never remote code: the classes are
registered with the Auto classes when `hwnas` is imported (lazily: see `autoregister`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from torch import nn

from hwnas.supernet.families import (
    CAPITALISED,
    PREFIX,
    causal_lm_class_name,
    config_class_name,
    model_type,
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

PER_LAYER_KEYS = ("intermediate_size", "num_attention_heads", "num_key_value_heads")


@dataclass(frozen=True)
class FamilyClasses:
    config_module: str
    module: str
    config: str
    pretrained: str
    causal_lm: str
    layer: str
    norm: str
    rotary: str


FAMILIES: dict[str, FamilyClasses] = {
    fam: FamilyClasses(f"transformers.models.{fam}.configuration_{fam}",
                       f"transformers.models.{fam}.modeling_{fam}", f"{cap}Config",
                       f"{cap}PreTrainedModel", f"{cap}ForCausalLM", f"{cap}DecoderLayer",
                       f"{cap}RMSNorm", f"{cap}RotaryEmbedding")
    for fam, cap in CAPITALISED.items()
}

_CONFIGS: dict[str, type[PretrainedConfig]] = {}
_CLASSES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {}


def _build_config(family: str) -> type[PretrainedConfig]:
    """The family's config subclass with per-layer architecture validation. Needs only the
    configuration module (no modelling code)."""
    names = FAMILIES[family]
    base_config = getattr(importlib.import_module(names.config_module), names.config)

    def validate_architecture(self: PretrainedConfig) -> None:
        for i in range(self.num_hidden_layers):
            layer = self.per_layer_config[i]
            if layer.num_attention_heads % layer.num_key_value_heads:
                raise ValueError(f"layer {i}: num_attention_heads={layer.num_attention_heads} "
                                 f"is not a multiple of num_key_value_heads="
                                 f"{layer.num_key_value_heads}")

    def validate(self: PretrainedConfig) -> None:
        # huggingface_hub's @strict binds the base class's validators at decoration time;
        # run them here with the per-layer architecture check in place of the global one.
        for check in getattr(base_config, "__class_validators__", []):
            if check.__name__ == "validate_architecture":
                validate_architecture(self)
            else:
                check(self)

    return cast("type[PretrainedConfig]", type(config_class_name(family), (base_config,), {
        "model_type": model_type(family), "validate_architecture": validate_architecture,
        "validate": validate,
        "__doc__": f"{names.config} whose layers may differ (per_layer_config)."}))


def config_class(family: str) -> type[PretrainedConfig]:
    """The config class of a family's heterogeneous variant."""
    if family not in _CONFIGS:
        _CONFIGS[family] = _build_config(family)
    return _CONFIGS[family]


def _build_model(family: str,
                 config_cls: type[PretrainedConfig]) -> type[PreTrainedModel]:
    names = FAMILIES[family]
    mod = importlib.import_module(names.module)
    pretrained = getattr(mod, names.pretrained)
    base_lm = getattr(mod, names.causal_lm)
    layer_cls = getattr(mod, names.layer)
    norm_cls = getattr(mod, names.norm)
    rotary_cls = getattr(mod, names.rotary)

    def model_init(self: PreTrainedModel, config: PretrainedConfig) -> None:
        pretrained.__init__(self, config)
        padding_idx = config.pad_token_id
        self.padding_idx = padding_idx
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx)
        self.layers = nn.ModuleList([layer_cls(config.per_layer_config[i], i)
                                     for i in range(config.num_hidden_layers)])
        self.norm = norm_cls(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = rotary_cls(config=config)
        self.gradient_checkpointing = False
        if getattr(config, "layer_types", None) is not None:
            # an attribute the stock model sets, not one PreTrainedModel declares
            setattr(self, "has_sliding_layers",  # noqa: B010
                    "sliding_attention" in config.layer_types)
        self.post_init()

    base_model = getattr(mod, names.causal_lm.replace("ForCausalLM", "Model"))
    model_cls = type(f"Hwnas{base_model.__name__}", (base_model,),
                     {"config_class": config_cls, "__init__": model_init})

    def lm_init(self: PreTrainedModel, config: PretrainedConfig) -> None:
        pretrained.__init__(self, config)
        self.model = model_cls(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    return cast("type[PreTrainedModel]", type(causal_lm_class_name(family), (base_lm,),
                                              {"config_class": config_cls, "__init__": lm_init}))


def classes(family: str) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    """(config class, causal-LM class) for a family's heterogeneous variant."""
    if family not in _CLASSES:
        config_cls = config_class(family)
        _CLASSES[family] = (config_cls, _build_model(family, config_cls))
    return _CLASSES[family]


def stock_class(family: str) -> type[PreTrainedModel]:
    """The stock transformers causal-LM class of a family."""
    names = FAMILIES[family]
    return cast("type[PreTrainedModel]",
                getattr(importlib.import_module(names.module), names.causal_lm))


def hetero_config(base_config: PretrainedConfig,
                  per_layer: list[dict[str, int]]) -> PretrainedConfig:
    """A heterogeneous config of `len(per_layer)` layers from a base (stock) config.

    Each entry of `per_layer` gives the layer's intermediate_size, num_attention_heads and
    num_key_value_heads. Global values stay the base's; only layers that differ are stored."""
    family = base_config.model_type.removeprefix(PREFIX)
    config_cls, _ = classes(family)
    d = base_config.to_dict()
    for k in ("model_type", "architectures", "per_layer_config", "transformers_version"):
        d.pop(k, None)
    d["num_hidden_layers"] = len(per_layer)
    d["head_dim"] = base_config.head_dim
    if getattr(base_config, "layer_types", None) is not None:
        d["layer_types"] = list(base_config.layer_types)[: len(per_layer)]
    cfg = config_cls(**d)
    cfg.per_layer_config = {i: dict(entry) for i, entry in enumerate(per_layer)}
    cfg.architectures = [classes(family)[1].__name__]
    return cfg
