"""`ArchInfo`: a model's shape in one vocabulary, read through a registered adapter per family.

Profilers, predictors and search read only `ArchInfo`, never raw Hugging Face config fields
(the way optimum's NormalizedConfig does it). Llama, Mistral and Qwen2 share their block
layout; they differ in which projections carry a bias.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

from hwnas.errors import InputError
from hwnas.registry import Registry

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class ArchInfo:
    family: str  # the adapter name: "llama", "mistral", "qwen2"
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_q_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_embeddings: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False

    @property
    def q_per_kv(self) -> int:
        return self.num_q_heads // self.num_kv_heads

    def to_dict(self) -> dict[str, int | str | bool]:
        return asdict(self)

    def key(self) -> str:
        """The shape's identity: layer latency depends on the shape, not on the weights."""
        blob = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ArchAdapter(Protocol):
    def __call__(self, config: PretrainedConfig) -> ArchInfo: ...


ADAPTERS: Registry[ArchAdapter] = Registry("model family")


def _common(config: PretrainedConfig, family: str, *, qkv_bias: bool, o_bias: bool,
            mlp_bias: bool) -> ArchInfo:
    n_q = int(config.num_attention_heads)
    n_kv = int(getattr(config, "num_key_value_heads", None) or n_q)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_q
    if n_q % n_kv:
        raise InputError(f"config: num_attention_heads={n_q} is not a multiple of "
                         f"num_key_value_heads={n_kv}; hwnas needs whole GQA groups")
    return ArchInfo(
        family=family,
        num_layers=int(config.num_hidden_layers),
        hidden_size=int(config.hidden_size),
        intermediate_size=int(config.intermediate_size),
        num_q_heads=n_q,
        num_kv_heads=n_kv,
        head_dim=int(head_dim),
        vocab_size=int(config.vocab_size),
        tie_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        mlp_bias=mlp_bias,
    )


@ADAPTERS.decorator("llama")
def _llama(config: PretrainedConfig) -> ArchInfo:
    bias = bool(getattr(config, "attention_bias", False))
    return _common(config, "llama", qkv_bias=bias, o_bias=bias,
                   mlp_bias=bool(getattr(config, "mlp_bias", False)))


@ADAPTERS.decorator("mistral")
def _mistral(config: PretrainedConfig) -> ArchInfo:
    return _common(config, "mistral", qkv_bias=False, o_bias=False, mlp_bias=False)


@ADAPTERS.decorator("qwen2")
def _qwen2(config: PretrainedConfig) -> ArchInfo:
    # Qwen2 has biases on q, k and v but not on o, and none in the MLP.
    return _common(config, "qwen2", qkv_bias=True, o_bias=False, mlp_bias=False)


def family_of(config: PretrainedConfig) -> str:
    """The adapter name for a config; our heterogeneous export maps back to its base family."""
    model_type = getattr(config, "model_type", None)
    base = getattr(config, "hwnas_base_model_type", None)
    return str(base or model_type)


def arch_info(config: PretrainedConfig) -> ArchInfo:
    family = family_of(config)
    if family not in ADAPTERS:
        raise InputError(f"model_type '{family}' is not supported: hwnas handles LLaMA-family "
                         f"causal LMs ({', '.join(ADAPTERS.names())}). Register an adapter in "
                         "hwnas.supernet.arch.ADAPTERS for another family.")
    try:
        info = ADAPTERS.get(family)(config)
    except InputError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, AttributeError, OverflowError) as e:
        raise InputError(f"model config ({family}): a shape field is missing or is not a "
                         f"positive integer ({' '.join(str(e).split())[:120]}); fix config.json "
                         "(num_hidden_layers, hidden_size, intermediate_size, "
                         "num_attention_heads, num_key_value_heads, vocab_size)") from None
    for name, v in info.to_dict().items():
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            raise InputError(f"model config ({family}): field '{name}' is {v}; it must be a "
                             "positive integer; fix config.json")
    return info
