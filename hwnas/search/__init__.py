"""Hardware-aware search: the pymoo problem over the super-network's encoding, the LINAS loop
(predictors searched with NSGA-II, real evaluations in small batches), plain NSGA-II and
random search for comparison, hypervolume tracking, resumable runs in the store and the
re-measured Pareto set.

    from hwnas.search import SearchConfig, search
    state = search(SearchConfig(hw="cpu-torch-fp32", model="smollm2-135m",
                                tasks=("piqa",), evals=60), store)
"""

from hwnas.search.config import SearchConfig
from hwnas.search.objectives import OBJECTIVES, Constraints
from hwnas.search.run import search

__all__ = ["OBJECTIVES", "Constraints", "SearchConfig", "search"]
