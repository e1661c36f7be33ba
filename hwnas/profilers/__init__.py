"""How to time a layer or a subnet on a backend; returns `Measurement`, never a float.

Heavy pieces (torch, the backends) load only when `profile_layers` / `measure_subnet` run:
the names below are looked up on first use (module `__getattr__`), and mypy sees their real
signatures through the `TYPE_CHECKING` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hwnas.profilers.measurement import PROTOCOL_VERSION, Measurement, TimingSpec

if TYPE_CHECKING:
    from hwnas.profilers.runner import ProfileSummary, profile_layers
    from hwnas.profilers.subnet import SubnetLatency, measure_subnet, measure_subnets

_WHERE = {"profile_layers": "runner", "ProfileSummary": "runner", "measure_subnet": "subnet",
          "measure_subnets": "subnet", "SubnetLatency": "subnet"}

__all__ = ["PROTOCOL_VERSION", "Measurement", "ProfileSummary", "SubnetLatency", "TimingSpec",
           "measure_subnet", "measure_subnets", "profile_layers"]


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module 'hwnas.profilers' has no attribute '{name}'")
    return getattr(importlib.import_module(f"hwnas.profilers.{_WHERE[name]}"), name)
