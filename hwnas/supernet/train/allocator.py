"""Keep the C allocator from handing large blocks back to the kernel between steps.

A training step allocates and frees tensors of the vocabulary's size (4 x 256 x 49,152
floats is 200 MB) many times. glibc serves blocks above its mmap threshold with fresh
`mmap` calls and unmaps them on free, so each one is page-faulted in again: on a 2-core
Xeon 60% of a step went to the kernel, and raising the thresholds made steps 1.8x faster
(benchmarks/bench_supernet_step.py). Raising
the mmap threshold and the trim threshold lets freed memory be reused. This changes only the
calling process, and only on glibc; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_done = False


def reuse_freed_memory(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 40) -> bool:
    """True when the allocator took the settings (glibc on Linux), else False."""
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = all([libc.mallopt(option, ctypes.c_int(min(value, 2**31 - 1)))
                  for option, value in ((M_MMAP_THRESHOLD, mmap_threshold),
                                        (M_TRIM_THRESHOLD, trim_threshold))])
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
