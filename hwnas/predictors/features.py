"""Feature rows for the predictors: plain numbers computed from `ArchInfo`, a layer's choices,
a workload and a `SubnetSpec`. Nothing here reads the store or fits anything.

Layer features (one row per decoder layer x workload): the layer's choices (MLP width, KV
groups), the workload (phase, new tokens, cached context, batch) and the analytic cost from
`hwnas.supernet.stats.layer_cost` (FLOPs, bytes of weights, KV cache and activations moved,
arithmetic intensity).

Subnet features (one row per subnet): the search space's integer encoding (three genes per
base layer) plus analytic totals (kept layers, parameters, FLOPs and bytes per token, mean
width and KV fractions).
"""

from __future__ import annotations

import numpy as np

from hwnas.hw_profiles.workload import Workload
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SearchSpace, SubnetSpec
from hwnas.supernet.stats import layer_cost, subnet_stats

PHASE_CODE = {"prefill": 0, "decode": 1}

LAYER_FEATURES = ("width", "kv_heads", "is_decode", "tokens", "context", "batch", "flops",
                  "weight_bytes", "kv_bytes", "act_bytes", "intensity")
# Latency grows with these (used as XGBoost monotone constraints): width, KV groups, tokens,
# context, batch. Analytic columns are left free.
LAYER_MONOTONE = (1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0)


def layer_row(arch: ArchInfo, width: int, kv_heads: int, wl: Workload,
              dtype: str = "fp32") -> list[float]:
    c = layer_cost(arch, width, kv_heads, wl.tokens, wl.context, wl.batch, dtype)
    return [float(width), float(kv_heads), float(PHASE_CODE[wl.phase]), float(wl.tokens),
            float(wl.context), float(wl.batch), c.flops, c.weight_bytes, c.kv_bytes,
            c.act_bytes, c.intensity]


def layer_matrix(arch: ArchInfo, rows: list[tuple[int, int, Workload]],
                 dtype: str = "fp32") -> np.ndarray:
    """Feature matrix for (width, kv_heads, workload) triples."""
    if not rows:
        return np.zeros((0, len(LAYER_FEATURES)))
    return np.array([layer_row(arch, w, k, wl, dtype) for w, k, wl in rows], dtype=float)


def subnet_layer_rows(spec: SubnetSpec, wl: Workload) -> list[tuple[int, int, Workload]]:
    return [(w, k, wl) for w, k in zip(spec.intermediate_size, spec.kv_heads, strict=True)]


def subnet_feature_names(space: SearchSpace) -> tuple[str, ...]:
    genes = []
    for i in range(space.arch.num_layers):
        genes += [f"keep_{i}", f"width_idx_{i}", f"kv_idx_{i}"]
    return tuple(genes) + ("n_layers", "params", "flops_per_token", "weight_bytes_per_token",
                           "mean_width_frac", "mean_kv_frac")


def subnet_row(space: SearchSpace, spec: SubnetSpec, dtype: str = "fp32") -> np.ndarray:
    x = space.encode(spec).astype(float)
    st = subnet_stats(space.arch, spec, dtype)
    mean_w = float(np.mean(spec.intermediate_size)) / space.arch.intermediate_size
    mean_k = float(np.mean(spec.kv_heads)) / space.arch.num_kv_heads
    extra = [float(spec.num_layers), float(st.params), st.flops_per_token,
             st.weight_bytes_per_token, mean_w, mean_k]
    return np.concatenate([x, np.array(extra)])


def subnet_matrix(space: SearchSpace, specs: list[SubnetSpec], dtype: str = "fp32") -> np.ndarray:
    if not specs:
        return np.zeros((0, len(subnet_feature_names(space))))
    return np.vstack([subnet_row(space, s, dtype) for s in specs])
