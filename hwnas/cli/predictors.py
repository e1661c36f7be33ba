"""`hwnas predictors train|report` and `hwnas predict`."""

from __future__ import annotations

from pathlib import Path

import typer

from hwnas.cli._common import JSON_OPT, MODEL_OPT, console, err_console, print_json, table
from hwnas.progress import ProgressEvent

HW_OPT = typer.Option(..., "--hw", help="Hardware profile name or YAML path.")
STAT_OPT = typer.Option(None, "--statistic",
                        help="Latency of a record: 'median' or 'min' of its raw runs (on a "
                             "machine shared with other work); default the profile's "
                             "timer.statistic.")

predictors_app = typer.Typer(name="predictors", no_args_is_help=True,
                             help="Train latency/accuracy predictors and report their accuracy.")


def _progress(ev: ProgressEvent) -> None:
    err_console.print(f"measuring subnet {ev.done + 1}/{ev.total} ({ev.what}) for real")


@predictors_app.command("train")
def train_cmd(
    hw: str = HW_OPT,
    model: str = MODEL_OPT,
    subnets: int = typer.Option(12, "--subnets", min=0,
                                help="Whole subnets to measure for real (if not stored yet) "
                                     "for the composition-overhead model."),
    tasks: list[str] = typer.Option([], "--task",
                                    help="Accuracy tasks (repeatable; default: every task "
                                         "evaluated in the store)."),
    seed: int = typer.Option(0, "--seed"),
    statistic: str | None = STAT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Train the latency predictor of a profile (and the accuracy predictor of the model)."""
    from hwnas.pipeline.measure import ensure_subnets
    from hwnas.predictors import api
    from hwnas.predictors.holdout import train_subnet_specs
    from hwnas.store import open_store

    t = api.resolve_target(hw, model)
    with open_store() as store:
        api.load_profile_data(store, t.hw.name, t.arch_key, model)  # clear error if none
        if subnets:
            ensure_subnets(t, store, train_subnet_specs(t.space, subnets), _progress)
        out = api.train(t, store, seed=seed, tasks=list(tasks) or None, statistic=statistic)
    if as_json:
        print_json(out.to_dict())
        return
    rows: list[list[object]] = [["layer samples", out.n_layer_samples],
            ["training subnets", out.n_train_subnets],
            ["latency predictor", out.latency_dir or ""]]
    if out.accuracy is not None:
        rows.append(["accuracy predictor", f"{out.accuracy.n_subnets} subnets, "
                     f"{', '.join(out.accuracy.tasks)}"])
    table(f"predictors trained: {t.hw.name} / {model}", ["", ""], rows)


@predictors_app.command("report")
def report_cmd(
    hw: str = HW_OPT,
    model: str = MODEL_OPT,
    out: Path | None = typer.Option(None, "--out", help="Folder for report.md, report.json "
                                                        "and figures [default: cache dir]."),
    holdout: int = typer.Option(50, "--holdout", min=5, help="Held-out random subnets."),
    subnets: int = typer.Option(12, "--subnets", min=0, help="Training subnets (overhead "
                                                             "and whole-network models)."),
    measure: bool = typer.Option(False, "--measure", help="Measure missing held-out and "
                                                          "training subnets for real first."),
    roofline: bool = typer.Option(True, "--roofline/--no-roofline",
                                  help="Measure peak FLOP/s and bandwidth for the roofline "
                                       "baseline (cached)."),
    efficiency: bool = typer.Option(True, "--efficiency/--no-efficiency",
                                    help="Compute the sample-efficiency curve."),
    tasks: list[str] = typer.Option([], "--task",
                                    help="Accuracy predictor's task (repeatable; default: the "
                                         "accuracy task with the most evaluated subnets; "
                                         "heldout_ppl only when named)."),
    seed: int = typer.Option(0, "--seed"),
    statistic: str | None = STAT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Held-out accuracy of every predictor and baseline: Markdown + JSON + PNG figures."""
    from hwnas.pipeline.measure import measure_for_report
    from hwnas.predictors import api
    from hwnas.predictors.output import write_report
    from hwnas.predictors.report import MAIN
    from hwnas.store import open_store

    t = api.resolve_target(hw, model)
    peaks = None
    with open_store() as store:
        api.load_profile_data(store, t.hw.name, t.arch_key, model)
        if measure:
            measure_for_report(t, store, holdout, subnets, _progress)
        if roofline:
            from hwnas.profilers.peaks import cached_peaks
            peaks = cached_peaks(t.hw.device, t.hw.dtype, t.hw.threads)
        r = api.report(t, store, n_holdout=holdout, peaks=peaks, seed=seed,
                       tasks=list(tasks) or None, efficiency=efficiency, statistic=statistic)
    folder = out or api.report_dir(t)
    files = write_report(r, folder)
    if as_json:
        data = r.to_dict()
        data["files"] = [str(f) for f in files]
        print_json(data)
        return
    rows = [[name, f"{m['primary']['mape']:.2f}", f"{m['primary']['within_10'] * 100:.0f}%",
             f"{m['primary']['spearman']:.3f}"] for name, m in
            sorted(r.latency.items(), key=lambda kv: kv[1]["primary"]["mape"])]
    table(f"held-out primary metric ({r.n_holdout} subnets)",
          ["predictor", "MAPE %", "within ±10%", "Spearman"], rows)
    console.print(f"main predictor: {MAIN}; report: {folder / 'report.md'}")


def predict_cmd(
    hw: str = HW_OPT,
    model: str = MODEL_OPT,
    subnet: str = typer.Option(..., "--subnet", help="Subnet spec: inline JSON or a file."),
    strict: bool = typer.Option(False, "--strict", help="Refuse a predictor trained on "
                                                        "another machine's fingerprint."),
    as_json: bool = JSON_OPT,
) -> None:
    """Predict the latency (primary metric, with a 90% interval) and accuracy of a subnet."""
    from hwnas.predictors import api
    from hwnas.supernet.space import SubnetSpec

    t = api.resolve_target(hw, model)
    spec = t.space.validate(SubnetSpec.parse(subnet))
    row = api.predict(t, [spec], strict=strict)[0]
    if as_json:
        print_json(row.to_dict())
        return
    lo, hi = row.latency_interval_ms
    rows = [["latency_ms", f"{row.latency_ms:.2f}  [{lo:.2f}, {hi:.2f}]"],
            *[[k, f"{v:.2f}"] for k, v in row.per_workload_ms.items()],
            ["in domain", "yes" if row.in_domain else "; ".join(row.domain_reasons)]]
    if row.accuracy is not None:
        rows.append(["accuracy", f"{row.accuracy:.4f}"])
    table(f"prediction: {t.hw.name} / {model}", ["", ""], rows)


def register(app: typer.Typer) -> None:
    app.add_typer(predictors_app, name="predictors")
    app.command("predict")(predict_cmd)
