"""How to time a layer or a subnet on a backend; returns `Measurement`, never a float.

Heavy pieces (torch, the backends) load only when `profile_layers` / `measure_subnet` run.
"""

from __future__ import annotations

from typing import Any

from hwnas.profilers.measurement import PROTOCOL_VERSION, Measurement, TimingSpec

__all__ = ["PROTOCOL_VERSION", "Measurement", "TimingSpec", "measure_subnet", "measure_subnets",
           "profile_layers"]


def profile_layers(*args: Any, **kwargs: Any) -> Any:
    from hwnas.profilers.runner import profile_layers as run
    return run(*args, **kwargs)


def measure_subnet(*args: Any, **kwargs: Any) -> Any:
    from hwnas.profilers.subnet import measure_subnet as run
    return run(*args, **kwargs)


def measure_subnets(*args: Any, **kwargs: Any) -> Any:
    from hwnas.profilers.subnet import measure_subnets as run
    return run(*args, **kwargs)
