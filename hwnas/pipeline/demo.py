"""The README's main job in one call: profile the hardware (within a budget), train and
report the latency predictors, search (LINAS), re-measure the Pareto set and write a report.

Every step keeps its results in the store under keys, so running the demo again continues
where it stopped (profiling resumes, measured subnets and evaluations are reused, the search
run resumes). `DemoSettings.quick()` shrinks every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import InputError
from hwnas.progress import Progress
from hwnas.search.config import DEFAULT_OBJECTIVES, SearchConfig
from hwnas.store import Storage

if TYPE_CHECKING:
    from hwnas.predictors.api import TrainResult
    from hwnas.predictors.metrics import RegressionMetrics
    from hwnas.profilers.runner import ProfileSummary
    from hwnas.search.runs import RunSummary

Say = Callable[[str], None]
DEFAULT_HW = "cpu-torch-fp32"  # the demo's profile when --hw is not given


@dataclass(frozen=True)
class DemoSettings:
    hw: str = DEFAULT_HW
    model: str = "smollm2-135m"
    tasks: tuple[str, ...] = ("piqa",)
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    evals: int = 30
    init: int = 10
    batch: int = 5
    limit: int = 60
    final_limit: int = 300
    final_max: int = 4
    inner_pop: int = 50
    inner_gens: int = 30
    profile_min: float = 10.0
    holdout: int = 10
    train_subnets: int = 6
    seed: int = 0
    evaluator: str = "real"
    lock: str | None = None

    @classmethod
    def quick(cls) -> DemoSettings:
        """Every step shrunk; change fields with `dataclasses.replace`."""
        return cls(evals=10, init=6, batch=2, limit=20, final_limit=40, final_max=2,
                   inner_pop=24, inner_gens=8, profile_min=3.0, holdout=5, train_subnets=3)

    def search_config(self) -> SearchConfig:
        return SearchConfig(hw=self.hw, model=self.model, tasks=self.tasks,
                            objectives=self.objectives, evals=self.evals,
                            seed=self.seed, init=self.init, batch=self.batch, limit=self.limit,
                            final_limit=self.final_limit, final_max=self.final_max,
                            inner_pop=self.inner_pop, inner_gens=self.inner_gens,
                            evaluator=self.evaluator)

    def run_name(self) -> str:
        quick = dataclasses.replace(DemoSettings.quick(), hw=self.hw, model=self.model,
                                    tasks=self.tasks, objectives=self.objectives,
                                    seed=self.seed, evaluator=self.evaluator, lock=self.lock)
        tag = "quick" if self == quick else "full"
        # the objectives are always in the name: a run from before a change of the default
        # (accuracy, until 2026-12-07) is then never resumed with other objectives
        steer = "+".join(self.objectives)
        return f"demo-{Path(self.model).name}-{self.hw}-seed{self.seed}-{tag}-{steer}"


@dataclass
class DemoResult:
    run: str
    report: Path
    plot: Path | None
    predictor_report: Path
    summary: RunSummary

    def to_dict(self) -> dict[str, object]:
        """As `hwnas demo --json` prints it."""
        return {"run": self.run, "report": str(self.report),
                "plot": str(self.plot) if self.plot else None,
                "predictor_report": str(self.predictor_report),
                "summary": self.summary.to_dict()}


@dataclass(frozen=True)
class PredictorStage:
    """What the demo's profiling and predictor steps produced: the layer-profiling summary,
    the trained predictors, and the held-out report of the main latency predictor."""

    profile: ProfileSummary
    trained: TrainResult
    report_dir: Path
    latency_metrics: RegressionMetrics  # the main predictor's, on the primary metric
    n_holdout: int

    def to_dict(self) -> dict[str, object]:
        """The plain form that the run's report (`hwnas.search.report.markdown`) reads."""
        return {"profile": self.profile.to_dict(), "trained": self.trained.to_dict(),
                "report_dir": str(self.report_dir), "latency_metrics": self.latency_metrics,
                "n_holdout": self.n_holdout}


def profile_and_predict(s: DemoSettings, store: Storage, say: Say) -> PredictorStage:
    """Profile layers (budgeted, resumable), measure a few whole subnets, train the latency
    predictor and write its held-out report."""
    from hwnas.pipeline.measure import ensure_subnets
    from hwnas.predictors import api
    from hwnas.predictors import holdout as ho
    from hwnas.predictors.output import write_report
    from hwnas.predictors.report import MAIN
    from hwnas.profilers import profile_layers
    from hwnas.profilers.lock import timing_lock
    from hwnas.supernet.models import load_config
    from hwnas.supernet.supernet import Supernet

    t = api.resolve_target(s.hw, s.model)
    shape = Supernet.from_config(load_config(s.model), name=s.model)  # timing ignores weights
    say(f"1/4 profiling layers of {s.model} on {t.hw.name} (budget {s.profile_min:g} min; "
        "resumes where it stopped)")
    with timing_lock(s.lock):
        prof = profile_layers(t.hw, shape, store, budget_s=s.profile_min * 60.0)
    say(f"    {prof.measured} measured now, {prof.already} already stored, "
        f"{prof.missing} left for a re-run")
    if prof.busy or prof.waited_s:
        say(f"    the machine was busy with other work: waited {prof.waited_s:.0f} s for "
            f"quiet; {prof.busy} records timed anyway are marked busy (their figures may be "
            "slow)")
    specs = ho.holdout_specs(t.space, s.holdout) + ho.train_subnet_specs(t.space,
                                                                           s.train_subnets)
    say(f"2/4 latency predictors: measuring {len(specs)} whole subnets (stored ones are "
        "reused), training, held-out report")
    with timing_lock(s.lock):
        ensure_subnets(t, store, specs, supernet=shape)
    trained = api.train(t, store, seed=s.seed)
    rep = api.report(t, store, n_holdout=s.holdout, seed=s.seed, efficiency=False)
    folder = api.report_dir(t)
    write_report(rep, folder)
    main = rep.latency[MAIN]["primary"]
    say(f"    {MAIN}: held-out MAPE {main['mape']:.1f}%, within ±10% "
        f"{main['within_10'] * 100:.0f}% of {rep.n_holdout} subnets")
    for note in rep.notes:
        if note.startswith("WARNING"):
            say(f"    {note}")
    return PredictorStage(profile=prof, trained=trained, report_dir=folder,
                          latency_metrics=main, n_holdout=rep.n_holdout)


def profile_for_this_machine(name: str = DEFAULT_HW, say: Say | None = None) -> str:
    """`name` when this machine matches the profile's pin; otherwise a copy of the profile
    (same backend, workloads and timer) pinned to this machine instead, written once into the
    user profile folder and reused by name. The demo's default then runs on any CPU, and its
    records never mix with another machine's (they are keyed by profile and fingerprint)."""
    import hashlib
    import json

    from hwnas.hw_profiles import collect_fingerprint, detect, load_profile, write_profile
    from hwnas.hw_profiles.fingerprint import mismatches

    hw = load_profile(name)
    fp = collect_fingerprint(hw.device)
    diffs = mismatches(hw.fingerprint, fp)
    if not diffs:
        return name
    mine = detect(device=hw.device, backend=hw.backend, dtype=hw.dtype, fp=fp)
    pin = json.dumps(mine.fingerprint, sort_keys=True)
    local = f"{name}-{hashlib.sha256(pin.encode()).hexdigest()[:8]}"
    try:
        if not mismatches(load_profile(local).fingerprint, fp):
            return local
    except InputError:
        pass
    copy = hw.model_copy(update={
        "name": local, "fingerprint": mine.fingerprint, "threads": mine.threads,
        "description": f"{name}'s settings, pinned to this machine: {mine.description}"})
    path = write_profile(copy)
    if say is not None:
        say(f"profile '{name}' is pinned to another machine ({'; '.join(diffs)}); using "
            f"'{local}', its settings pinned to this one ({path})")
    return local


def run_demo(s: DemoSettings, store: Storage, say: Say,
             progress: Progress | None = None) -> DemoResult:
    from hwnas.search.plot import pareto_png
    from hwnas.search.quality import task_plan
    from hwnas.search.run import run_dir, search
    from hwnas.search.runs import summary
    from hwnas.search.state import RunState

    cfg = s.search_config()
    cfg.check()
    pred = profile_and_predict(s, store, say)
    name = s.run_name()
    plan = (task_plan(cfg.tasks, cfg.objectives, cfg.constraints.min_accuracy)
            if s.evaluator == "real" else None)  # the fake evaluator's tasks are only names
    first = plan.search if plan else cfg.tasks
    later = [t for t in plan.final if t not in plan.search] if plan else []
    say(f"3/4 searching ({s.evals} real evaluations on {', '.join(first)}, "
        f"{s.limit} items each" + (f"; {', '.join(later)} when the Pareto set is re-measured"
                                    if later else "") + f"; run '{name}', resumable)")
    search(cfg, store, name, resume=None, progress=progress, lock=s.lock)
    say("4/4 report")
    summ = summary(store, name)
    folder = run_dir(name)
    plot = pareto_png(RunState.load(store, name), summ, folder / "pareto.png") \
        if summ.pareto else None
    report = folder / "report.md"
    from hwnas.search.report import markdown

    report.write_text(markdown(summ, pred.to_dict(), plot, dataclasses.asdict(s)))
    return DemoResult(name, report, plot, pred.report_dir, summ)
