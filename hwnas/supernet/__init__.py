"""The elastic model: search space, subnet spec, importance ordering, extraction and export.

The names below load on first use, so that `import hwnas` (which imports
`hwnas.supernet.autoregister`) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwnas.supernet.arch import ArchInfo, arch_info
    from hwnas.supernet.space import SearchSpace, SubnetSpec
    from hwnas.supernet.stats import SubnetStats, layer_cost, subnet_stats

_WHERE = {"ArchInfo": "arch", "arch_info": "arch", "SearchSpace": "space",
          "SubnetSpec": "space", "SubnetStats": "stats", "layer_cost": "stats",
          "subnet_stats": "stats"}

__all__ = ["ArchInfo", "SearchSpace", "SubnetSpec", "SubnetStats", "arch_info", "layer_cost",
           "subnet_stats"]


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module 'hwnas.supernet' has no attribute '{name}'")
    return getattr(importlib.import_module(f"hwnas.supernet.{_WHERE[name]}"), name)
