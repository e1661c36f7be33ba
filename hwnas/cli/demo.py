"""`hwnas demo`: profile → predictors → search → report on the embedded default model against
this machine's CPU profile. Re-running it continues from the store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from hwnas.cli._common import JSON_OPT, MODEL_OPT, console, err_console, print_json


def demo_cmd(
    hw: str | None = typer.Option(None, "--hw", help="Hardware profile name or YAML "
                                  "[default: cpu-torch-fp32, or a copy of it pinned to this "
                                  "machine when its pin does not match]."),
    model: str = MODEL_OPT,
    tasks: str = typer.Option("piqa", "--tasks", help="Comma-separated accuracy tasks."),
    objectives: str | None = typer.Option(None, "--objectives", help="As `hwnas search "
                                          "--objectives` [default: perplexity,latency]."),
    quick: bool = typer.Option(False, "--quick", help="Shrink every step (a few minutes)."),
    evals: int | None = typer.Option(None, "--evals", help="Real evaluations [30; quick 10]."),
    profile_min: float | None = typer.Option(None, "--profile-min",
                                             help="Profiling budget in minutes [10; quick 3]."),
    seed: int = typer.Option(0, "--seed"),
    timing_lock: Path | None = typer.Option(None, "--timing-lock",
                                            help="Hold this file's flock while timing."),
    evaluator: str = typer.Option("real", "--evaluator", help="real | fake (synthetic "
                                  "accuracy and latency, for tests)."),
    as_json: bool = JSON_OPT,
) -> None:
    """The main job end to end: profile, train predictors, search, re-measure, report."""
    from hwnas.cli.search import progress_printer
    from hwnas.pipeline.demo import DEFAULT_HW, DemoSettings, profile_for_this_machine, run_demo
    from hwnas.store import open_store

    def say(text: str) -> None:
        if not as_json:
            err_console.print(text)

    if hw is None:
        hw = profile_for_this_machine(DEFAULT_HW, say) if evaluator == "real" else DEFAULT_HW
    base = DemoSettings.quick() if quick else DemoSettings()
    s = dataclasses.replace(
        base, hw=hw, model=model, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
        objectives=(tuple(o.strip() for o in objectives.split(",") if o.strip())
                    if objectives else base.objectives),
        seed=seed, evaluator=evaluator, lock=str(timing_lock) if timing_lock else None,
        evals=base.evals if evals is None else evals,
        profile_min=base.profile_min if profile_min is None else profile_min)
    with open_store() as store:
        res = run_demo(s, store, say, progress_printer(as_json))
    if as_json:
        print_json(res.to_dict())
        return
    from hwnas.cli.search import show

    with open_store() as store:
        show(store, res.run, False)
    console.print(f"report: {res.report}")
    if res.plot:
        console.print(f"Pareto plot: {res.plot}")
    console.print(f"predictor report: {res.predictor_report / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
