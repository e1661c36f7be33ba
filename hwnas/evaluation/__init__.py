"""Accuracy of subnets on benchmarks, measured the way profilers measure time.

    from hwnas.evaluation import evaluate
    results = evaluate(sn, spec, ["arc_easy", "mmlu"], limit=200, store=open_store())
"""

from hwnas.evaluation.evaluator import cache_key, evaluate
from hwnas.evaluation.result import EVALUATOR_VERSION, EvalResult
from hwnas.evaluation.target import EvalTarget, from_dir, from_model, from_supernet

__all__ = ["EVALUATOR_VERSION", "EvalResult", "EvalTarget", "cache_key", "evaluate", "from_dir",
           "from_model", "from_supernet"]
