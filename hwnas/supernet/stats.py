"""Analytic size and cost of a subnet: parameters, FLOPs and bytes moved.

Per-layer figures (`layer_cost`) are also the analytic features of the latency predictor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SubnetSpec

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}


def layer_params(arch: ArchInfo, width: int, kv_heads: int) -> int:
    h, hd = arch.hidden_size, arch.head_dim
    q_out = kv_heads * arch.q_per_kv * hd
    kv_out = kv_heads * hd
    attn = h * q_out + 2 * h * kv_out + q_out * h
    if arch.qkv_bias:
        attn += q_out + 2 * kv_out
    if arch.o_bias:
        attn += h
    mlp = 3 * h * width + (2 * width + h if arch.mlp_bias else 0)
    return attn + mlp + 2 * h  # two RMSNorm weights


def fixed_params(arch: ArchInfo) -> int:
    emb = arch.vocab_size * arch.hidden_size
    return emb + (0 if arch.tie_embeddings else emb) + arch.hidden_size


@dataclass(frozen=True)
class LayerCost:
    """Cost of one decoder layer for `tokens` new tokens attending to `context` positions."""

    params: int
    flops: float
    weight_bytes: float
    kv_bytes: float
    act_bytes: float

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes + self.act_bytes

    @property
    def intensity(self) -> float:
        return self.flops / max(self.bytes, 1.0)


def layer_cost(arch: ArchInfo, width: int, kv_heads: int, tokens: int, context: int,
               batch: int = 1, dtype: str = "fp32") -> LayerCost:
    """`tokens` new tokens per sequence; they attend to `context` earlier positions plus
    themselves (causal), so prefill of T is tokens=T, context=0; decode is tokens=1."""
    b = DTYPE_BYTES[dtype]
    p = layer_params(arch, width, kv_heads)
    n_tok = tokens * batch
    q_heads = kv_heads * arch.q_per_kv
    hd = arch.head_dim
    matmul = 2.0 * n_tok * (p - 2 * arch.hidden_size)
    # attention scores and weighted sum: each new token sees context + (causal) half the batch
    seen = context + (tokens + 1) / 2.0
    attn = 4.0 * batch * tokens * seen * q_heads * hd
    kv_total = batch * (context + tokens) * 2 * kv_heads * hd
    act = n_tok * (2 * arch.hidden_size + 3 * width)
    return LayerCost(params=p, flops=matmul + attn, weight_bytes=float(p * b),
                     kv_bytes=float(kv_total * b), act_bytes=float(act * b))


@dataclass(frozen=True)
class SubnetStats:
    params: int
    layers: int
    flops_per_token: float
    weight_bytes_per_token: float
    weight_bytes: int
    dtype: str

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def subnet_stats(arch: ArchInfo, spec: SubnetSpec, dtype: str = "fp32") -> SubnetStats:
    b = DTYPE_BYTES[dtype]
    per_layer = [layer_params(arch, w, k)
                 for w, k in zip(spec.intermediate_size, spec.kv_heads, strict=True)]
    params = sum(per_layer) + fixed_params(arch)
    head = arch.vocab_size * arch.hidden_size
    # one decode token at position 0: matmuls in every layer plus the LM head
    flops = sum(layer_cost(arch, w, k, 1, 0, dtype=dtype).flops
                for w, k in zip(spec.intermediate_size, spec.kv_heads, strict=True))
    flops += 2.0 * head
    # bytes read for one token: every layer's weights, the LM head, one embedding row
    read = sum(per_layer) + head + arch.hidden_size * (1 if not arch.tie_embeddings else 0)
    read += arch.hidden_size  # final norm
    return SubnetStats(params=params, layers=spec.num_layers, flops_per_token=flops,
                       weight_bytes_per_token=float(read * b), weight_bytes=params * b,
                       dtype=dtype)
