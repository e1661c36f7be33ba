"""Peak FLOP/s and memory bandwidth of a device, measured by a microbenchmark (a big matmul
and a big memory copy in torch) under the timing lock, and cached per device, dtype and
threads. The roofline baseline of the predictors reads them; nothing is fitted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import ModuleType

from hwnas.profilers.lock import timing_lock

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "float32"}


@dataclass(frozen=True)
class Peaks:
    flops_per_s: float
    bytes_per_s: float
    device: str
    dtype: str
    threads: int

    def to_dict(self) -> dict[str, float | str | int]:
        return asdict(self)


def measure_peaks(device: str = "cpu", dtype: str = "fp32", threads: int = 0,
                  matmul_n: int = 2048, copy_mib: int = 256, repeats: int = 5) -> Peaks:
    """Best of `repeats`: an n x n matmul (2 n^3 FLOPs) and a copy of `copy_mib` MiB (read +
    write), timed while holding the timing lock (`HWNAS_TIMING_LOCK`) like every other timed
    group."""
    import torch

    if threads > 0 and device == "cpu":
        torch.set_num_threads(threads)
    dt = getattr(torch, TORCH_DTYPES[dtype])
    a = torch.randn(matmul_n, matmul_n, dtype=dt, device=device)
    b = torch.randn(matmul_n, matmul_n, dtype=dt, device=device)
    n_el = copy_mib * (1 << 20) // torch.finfo(dt).bits * 8
    src = torch.ones(n_el, dtype=dt, device=device)
    dst = torch.empty_like(src)
    with timing_lock():
        t_mm = _best(torch, device, repeats, lambda: torch.mm(a, b))
        t_cp = _best(torch, device, repeats, lambda: dst.copy_(src))
    return Peaks(flops_per_s=2.0 * matmul_n ** 3 / t_mm,
                 bytes_per_s=2.0 * src.numel() * src.element_size() / t_cp,
                 device=device, dtype=dtype, threads=threads)


def _best(torch: ModuleType, device: str, repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of `repeats` timed calls of `fn`, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(torch, device)
        t0 = time.perf_counter()
        fn()
        _sync(torch, device)
        times.append(time.perf_counter() - t0)
    return min(times)


def _sync(torch: ModuleType, device: str) -> None:
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


