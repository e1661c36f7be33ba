"""`hwnas search` (LINAS, plain NSGA-II or random search, resumable) and `hwnas runs
list|show`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hwnas.cli._common import JSON_OPT, MODEL_OPT, console, err_console, print_json, table
from hwnas.cli._executor import EXECUTOR_OPT, RETRIES_OPT, SCHEDULER_OPT, WORKERS_OPT, executor_spec
from hwnas.progress import Progress, ProgressEvent

if TYPE_CHECKING:
    from hwnas.store import Storage

runs_app = typer.Typer(name="runs", no_args_is_help=True,
                       help="List search runs and show one (Pareto set, hypervolume, plot).")


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def progress_printer(quiet: bool = False) -> Progress:
    def show(ev: ProgressEvent) -> None:
        if quiet:
            return
        info = ev.info
        if ev.stage == "iteration":
            err_console.print(f"iteration {info['iteration']}: evaluations "
                              f"{ev.done}/{ev.total}, front size "
                              f"{info['front_size']}, hypervolume {info['hypervolume']:.4f}")
        elif ev.stage == "eval":
            values = info["values"]
            assert isinstance(values, dict)
            vals = ", ".join(f"{k} {v:.4g}" for k, v in values.items()
                             if k in ("accuracy", "gold_prob", "perplexity", "latency_ms"))
            err_console.print(f"  real evaluation {ev.done}/{ev.total}: {vals}", style="dim")
        elif ev.stage == "failed":
            err_console.print(f"  real evaluation {ev.done}/{ev.total} failed (recorded as "
                              f"infeasible): {info['reason']}", markup=False)
        elif ev.stage == "plan":
            err_console.print(f"  iteration {info['iteration']}: training predictors and "
                              "searching them", style="dim")
        elif ev.stage == "reference":
            err_console.print("measuring the full model (the reference)")
        elif ev.stage == "remeasure":
            if ev.what == "latency":
                err_console.print(f"re-measuring the Pareto set: timing all {ev.total} "
                                  "(the full model included) interleaved")
            else:
                err_console.print(f"re-measuring the Pareto set: {ev.what} "
                                  f"({ev.done + 1}/{ev.total})")
    return show


def search_cmd(
    hw: str = typer.Option("cpu-torch-fp32", "--hw", help="Hardware profile name or YAML."),
    model: str = MODEL_OPT,
    tasks: str = typer.Option("piqa", "--tasks", help="Comma-separated tasks (accuracy is "
                              "their mean), e.g. arc_easy,piqa; heldout_ppl for perplexity."),
    objectives: str = typer.Option("perplexity,latency", "--objectives",
                                   help="Comma-separated: accuracy, gold_prob (the gold "
                                        "choice's probability), latency, params, memory, "
                                        "perplexity (on the --tasks' perplexity task, else on "
                                        "held-out text; the other tasks are then scored only "
                                        "when the Pareto set is re-measured)."),
    evals: int = typer.Option(60, "--evals", help="Real evaluations (budget)."),
    seed: int = typer.Option(0, "--seed"),
    run: str | None = typer.Option(None, "--run", help="Run name [default: from the "
                                   "settings, so the same command resumes the same run]."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    limit: int = typer.Option(100, "--limit", help="Items per task for each real evaluation "
                              "(0: all)."),
    final_limit: int = typer.Option(1000, "--final-limit", help="Items per task when "
                                    "re-evaluating the Pareto set (0: all)."),
    final_max: int = typer.Option(6, "--final-max", help="Pareto subnets re-measured."),
    strategy: str = typer.Option("linas", "--strategy", help="linas | nsga2 | random | local | "
                                 "linas-v1 (the first LINAS, for comparison) | optuna-tpe | "
                                 "optuna-gp (Optuna's samplers, the optional extra)."),
    algorithm: str = typer.Option("nsga2", "--algorithm", help="nsga2 | agemoea | unsga3 | "
                                  "nsga3 | smsemoa (inside LINAS, or the strategy nsga2's)."),
    init: int = typer.Option(0, "--init", help="Initial population (0: max(8, evals/5))."),
    batch: int = typer.Option(0, "--batch", help="Real evaluations per LINAS iteration "
                              "(0: max(4, evals/10))."),
    inner_gens: int = typer.Option(40, "--inner-gens", help="Generations on the predictors."),
    inner_pop: int = typer.Option(60, "--inner-pop", help="Population on the predictors."),
    latency: str = typer.Option("measured", "--latency", help="measured (profiler, each "
                                "subnet) | predicted (layer-composed predictor; the Pareto set "
                                "is still re-measured) | none (no latency: quality against "
                                "params or memory, no hardware profile needed)."),
    max_latency_ms: float | None = typer.Option(None, "--max-latency-ms"),
    max_params: float | None = typer.Option(None, "--max-params"),
    min_accuracy: float | None = typer.Option(None, "--min-accuracy"),
    min_speedup: float | None = typer.Option(None, "--min-speedup", help="Only subnets at "
                                             "least this many times faster than the full "
                                             "model (its predicted latency), e.g. 1.3."),
    min_smaller: float | None = typer.Option(None, "--min-smaller", help="Only subnets with "
                                             "at least this many times fewer parameters "
                                             "than the full model, e.g. 1.2."),
    timing_lock: Path | None = typer.Option(None, "--timing-lock", help="Hold this file's "
                                            "flock while timing (machines shared with "
                                            "other timing runs)."),
    evaluator: str = typer.Option("real", "--evaluator", help="real | fake (synthetic, for "
                                  "tests)."),
    repair: str = typer.Option("none", "--repair", help="none, or ls: evaluate every subnet "
                               "with the training-free least-squares repair of its cut weights "
                               "(export the picks with the same --repair)."),
    executor: str | None = EXECUTOR_OPT,
    scheduler: str | None = SCHEDULER_OPT,
    workers: int | None = WORKERS_OPT,
    retries: int = RETRIES_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Search a model's subnets for a hardware profile; re-measure the Pareto set."""
    from hwnas.errors import InputError
    from hwnas.executors import open_executor
    from hwnas.search import Constraints, SearchConfig, search
    from hwnas.search.relative import relative_bounds, tighter
    from hwnas.store import open_store

    for flag, v in (("--limit", limit), ("--final-limit", final_limit)):
        if v < 0:
            raise InputError(f"{flag} {v}: give a positive number of items per task, or 0 "
                             "for all")
    if evaluator == "real":
        from hwnas.hw_profiles import load_profile
        load_profile(hw)  # before a run or its folder is created
    where = executor_spec(executor, scheduler, workers, retries)
    with open_store() as store, open_executor(where, hw=[_profile_name(hw)]) as ex:
        rel_lat, rel_params = relative_bounds(hw, model, store, min_speedup=min_speedup,
                                              min_smaller=min_smaller, seed=seed, run=run)
        cfg = SearchConfig(
            hw=hw, model=model, tasks=_split(tasks), objectives=_split(objectives),
            constraints=Constraints(tighter(max_latency_ms, rel_lat),
                                    tighter(max_params, rel_params), min_accuracy),
            evals=evals, seed=seed, strategy=strategy, algorithm=algorithm, init=init,
            batch=batch, inner_pop=inner_pop, inner_gens=inner_gens, limit=limit or None,
            final_limit=final_limit or None, final_max=final_max, latency=latency,
            evaluator=evaluator, repair=repair)
        name, _ = search(cfg, store, run, resume=True if resume else False,
                         progress=progress_printer(as_json), lock=timing_lock, executor=ex)
        show(store, name, as_json)


def _profile_name(hw: str) -> str:
    """The hardware profile's name (a local cluster's workers declare it as a resource)."""
    from hwnas.errors import InputError
    from hwnas.hw_profiles import load_profile

    try:
        return load_profile(hw).name
    except InputError:  # a synthetic run (--evaluator fake) names no real profile
        return hw


def show(store: Storage, name: str, as_json: bool) -> None:
    from hwnas.search.plot import pareto_png
    from hwnas.search.report import quality_keys
    from hwnas.search.run import run_dir
    from hwnas.search.runs import summary
    from hwnas.search.state import RunState

    s = summary(store, name)
    if s.pareto:
        png = pareto_png(RunState.load(store, name), s, run_dir(name) / "pareto.png")
        s = dataclasses.replace(s, plot=str(png))
    if as_json:
        print_json(s.to_dict())
        return
    ref = s.reference.best()
    q, also = quality_keys(s)
    rows: list[list[object]] = []
    for i, p in enumerate(s.pareto, start=1):
        m, pr = p.measured or {}, p.predicted.get("mean", {})
        rows.append([i, _f(pr.get("latency_ms")), _f(m.get("latency_ms")),
                     _ratio(ref.get("latency_ms"), m.get("latency_ms")),
                     _f(pr.get(q), 3), _f(m.get(q), 3), *([_f(m.get(also), 3)] if also else []),
                     _ratio(ref.get("params"), m.get("params")), p.key])
    rows.append(["full", "", _f(ref.get("latency_ms")), "1.00x", "", _f(ref.get(q), 3),
                 *([_f(ref.get(also), 3)] if also else []), "1.00x", "full model"])
    table(f"run {name}: {s.status}, {s.evals_used}/{s.evals} real evaluations, "
          f"{s.hw}", ["#", "latency pred.", "latency meas.", "speed-up", f"{q} pred.",
                         f"{q} meas.", *([f"{also} meas."] if also else []), "smaller",
                         "subnet"], rows)
    hv = s.hypervolume
    if hv:
        console.print("hypervolume per iteration: " + " ".join(f"{v:.4f}" for v in hv))
    ag = s.agreement["latency_ms"]
    if ag.share is not None:
        console.print(f"re-measured latency within ±10% of the prediction: "
                      f"{ag.share * 100:.0f}% of {ag.n} subnets")
    if s.plot:
        console.print(f"plot: {s.plot}")
        console.print(f"export one: hwnas export --run {name} --pick K --out DIR")


def _f(v: float | None, digits: int = 1) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _ratio(ref: float | None, v: float | None) -> str:
    return "" if not ref or not v else f"{ref / v:.2f}x"


@runs_app.command("list")
def list_cmd(as_json: bool = JSON_OPT) -> None:
    """Every search run in the store."""
    from hwnas.search.runs import list_runs
    from hwnas.store import open_store

    with open_store() as store:
        rows = list_runs(store)
    if as_json:
        print_json(rows)
        return
    table("search runs", ["name", "strategy", "hw", "model", "evaluations", "front",
                          "hypervolume", "status"],
          [[r["name"], r["strategy"], r["hw"], r["model"], f"{r['evals_used']}/{r['evals']}",
            r["front_size"] or "", _f(r["hypervolume"], 4), r["status"]] for r in rows])


@runs_app.command("show")
def show_cmd(run: str = typer.Argument(..., help="Run name (see `hwnas runs list`)."),
             as_json: bool = JSON_OPT) -> None:
    """A run's Pareto set (predicted and re-measured), reference, hypervolume and plot."""
    from hwnas.store import open_store

    with open_store() as store:
        show(store, run, as_json)


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
    app.add_typer(runs_app)
