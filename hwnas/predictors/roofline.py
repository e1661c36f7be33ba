"""The roofline baseline: peak FLOP/s and memory bandwidth measured by a microbenchmark on the
device (a big matmul and a big memory copy in torch), then time = max(FLOPs / peak,
bytes / bandwidth) per layer and for the embedding and LM head. Nothing is fitted to the
latency measurements: it is what one would predict without profiling."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hwnas.predictors.features import LAYER_FEATURES, Workload
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.stats import DTYPE_BYTES

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "float32"}


@dataclass(frozen=True)
class Peaks:
    flops_per_s: float
    bytes_per_s: float
    device: str
    dtype: str
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_peaks(device: str = "cpu", dtype: str = "fp32", threads: int = 0,
                  matmul_n: int = 2048, copy_mib: int = 256, repeats: int = 5) -> Peaks:
    """Best of `repeats`: an n x n matmul (2 n^3 FLOPs) and a copy of `copy_mib` MiB (read +
    write). Time it while nothing else runs on the device."""
    import torch

    if threads > 0 and device == "cpu":
        torch.set_num_threads(threads)
    dt = getattr(torch, TORCH_DTYPES[dtype])
    a = torch.randn(matmul_n, matmul_n, dtype=dt, device=device)
    b = torch.randn(matmul_n, matmul_n, dtype=dt, device=device)
    n_el = copy_mib * (1 << 20) // torch.finfo(dt).bits * 8
    src = torch.ones(n_el, dtype=dt, device=device)
    dst = torch.empty_like(src)

    def best(fn: Any) -> float:
        fn()
        times = []
        for _ in range(repeats):
            _sync(torch, device)
            t0 = time.perf_counter()
            fn()
            _sync(torch, device)
            times.append(time.perf_counter() - t0)
        return min(times)

    t_mm = best(lambda: torch.mm(a, b))
    t_cp = best(lambda: dst.copy_(src))
    return Peaks(flops_per_s=2.0 * matmul_n ** 3 / t_mm,
                 bytes_per_s=2.0 * src.numel() * src.element_size() / t_cp,
                 device=device, dtype=dtype, threads=threads)


def _sync(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def cached_peaks(device: str, dtype: str, threads: int, refresh: bool = False) -> Peaks:
    """Peaks of this machine, measured once and kept in the cache dir."""
    from hwnas.paths import sub_dir

    path = sub_dir("predictors", "peaks") / f"{device.replace(':', '_')}-{dtype}-t{threads}.json"
    if path.is_file() and not refresh:
        return Peaks(**json.loads(path.read_text()))
    peaks = measure_peaks(device, dtype, threads)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(peaks.to_dict(), indent=2))
    tmp.replace(path)
    return peaks


class RooflineLayers:
    """Layer-model interface (`predict_members`) for the layer feature matrix."""

    def __init__(self, peaks: Peaks) -> None:
        self.peaks = peaks
        self._i = {n: LAYER_FEATURES.index(n) for n in LAYER_FEATURES}

    def predict_members(self, X: Any) -> np.ndarray:
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
