"""A search's batch of real evaluations, through an executor.

An evaluator that knows how to spread its work (`RealEvaluator.evaluate_batch`: accuracy as
evaluation jobs, measured latency as timing jobs) does so; any other evaluator's `evaluate` is
one job per subnet (it travels to the worker with its arguments, so it must be picklable, as
`FakeEvaluator` is). A job that raised comes back as a `Failure`: the runner records the
subnet as failed, with the reason, and the search goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable

from hwnas.executors import Executor, Failure, Job, Outcome
from hwnas.search.evaluators import Evaluator, Measured
from hwnas.search.objectives import Objective
from hwnas.supernet.space import SubnetSpec


def eval_key(ev: Evaluator, spec: SubnetSpec) -> str:
    """The idempotent key of one real evaluation: the evaluator (model, hardware, protocol)
    and the subnet."""
    ident = json.dumps([ev.describe(), spec.key()], sort_keys=True, default=str)
    return "search-eval-" + hashlib.sha256(ident.encode()).hexdigest()[:24]


Got = Measured | Failure
OnResult = Callable[[SubnetSpec, Got], None]


def evaluate_batch(ev: Evaluator, specs: list[SubnetSpec], executor: Executor,
                   on_result: OnResult) -> None:
    """Evaluate `specs`; `on_result(spec, measured or failure)` for each, in their order, as
    soon as it and those before it are done."""
    spread = getattr(ev, "evaluate_batch", None)
    if callable(spread):
        for spec, got in zip(specs, spread(specs), strict=True):
            on_result(spec, got)
        return
    by_key = {eval_key(ev, s): s for s in specs}

    def done(o: Outcome[Measured]) -> None:
        on_result(by_key[o.key], o.value if o.value is not None else
                  (o.failure or Failure("error", "NoValue", "the job returned nothing")))

    executor.map([Job(k, ev.evaluate, (s,)) for k, s in by_key.items()], done)


def penalty_values(objectives: tuple[Objective, ...], reference: dict[str, float],
                   exact: dict[str, float]) -> dict[str, float]:
    """Values for a failed subnet that no objective counts as good (for algorithms that need
    numbers for every member of a population): beyond the hypervolume's reference point."""
    out = dict(exact)
    for o in objectives:
        if o.key in out:
            continue
        ref = float(reference.get(o.key, 1.0))
        if o.scale == "share":
            out[o.key] = 0.0
        elif o.scale == "log":
            out[o.key] = ref ** 4 if ref > 1 else math.exp(4.0)
        else:
            out[o.key] = 10.0 * ref if ref else 1e12
    return out
