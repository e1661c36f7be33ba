"""The roofline baseline: time = max(FLOPs / peak, bytes / bandwidth) per layer and for the
embedding and LM head, from the device's measured peaks (`hwnas.profilers.peaks`). Nothing
is fitted to the latency measurements: it is what one would predict without profiling."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from hwnas.hw_profiles.workload import Workload
from hwnas.predictors.features import LAYER_FEATURES
from hwnas.profilers.peaks import Peaks
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.stats import DTYPE_BYTES


class RooflineLayers:
    """Layer-model interface (`predict_members`) for the layer feature matrix."""

    def __init__(self, peaks: Peaks) -> None:
        self.peaks = peaks
        self._i = {n: LAYER_FEATURES.index(n) for n in LAYER_FEATURES}

    def predict_members(self, X: ArrayLike) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        i = self._i
        flops = X[:, i["flops"]]
        moved = X[:, i["weight_bytes"]] + X[:, i["kv_bytes"]] + X[:, i["act_bytes"]]
        return (np.maximum(flops / self.peaks.flops_per_s, moved / self.peaks.bytes_per_s)
                * 1000.0)[None, :]


def roofline_fixed_ms(arch: ArchInfo, wl: Workload, dtype: str, peaks: Peaks) -> float:
    """Embedding gather + final norm + LM head over every new token."""
    b = DTYPE_BYTES[dtype]
    n_tok = wl.tokens * wl.batch
    head_flops = 2.0 * n_tok * arch.vocab_size * arch.hidden_size
    moved = (arch.vocab_size * arch.hidden_size * b + 2 * n_tok * arch.hidden_size * b
             + n_tok * arch.vocab_size * b)
    return max(head_flops / peaks.flops_per_s, moved / peaks.bytes_per_s) * 1000.0
