"""The elastic model: search space, subnet spec, importance ordering, extraction and export."""

from hwnas.supernet.arch import ArchInfo, arch_info
from hwnas.supernet.space import SearchSpace, SubnetSpec
from hwnas.supernet.stats import SubnetStats, layer_cost, subnet_stats

__all__ = ["ArchInfo", "SearchSpace", "SubnetSpec", "SubnetStats", "arch_info", "layer_cost",
           "subnet_stats"]
