"""`hwnas profile` (time layer variants into the store), `hwnas profile export|import`
(share a device's measurements as Parquet/CSV) and `hwnas measure` (one whole subnet)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from hwnas.cli._common import (
    JSON_OPT,
    MODEL_OPT,
    console,
    err_console,
    print_json,
    progress_bar,
    table,
)
from hwnas.cli._executor import EXECUTOR_OPT, RETRIES_OPT, SCHEDULER_OPT, WORKERS_OPT, executor_spec
from hwnas.progress import ProgressEvent

if TYPE_CHECKING:
    from hwnas.hw_profiles import HardwareProfile

HW_OPT = typer.Option(..., "--hw", help="Hardware profile name or YAML path.")
FORCE_OPT = typer.Option(False, "--force", help="Measure even when the profile's pinned "
                                                "fingerprint does not match this machine.")

ON_BUSY_OPT = typer.Option(None, "--on-busy", help="When other work keeps the machine busy "
                           "before a timed group: 'wait' (up to --max-wait-s, then time and "
                           "flag the records busy), 'refuse' (wait, then stop with an error; "
                           "what was measured is kept) or 'proceed' (time at once, flagged). "
                           "Default: the profile's interference.on_busy (wait).")
MAX_WAIT_OPT = typer.Option(None, "--max-wait-s", min=0.0, help="Longest wait for a quiet "
                            "machine in one run (default: the profile's "
                            "interference.max_wait_s, 120).")


def with_interference(hw: str, on_busy: str | None,
                      max_wait_s: float | None) -> HardwareProfile:
    """The profile, its interference settings overridden by the command's options."""
    from hwnas.errors import InputError
    from hwnas.hw_profiles import load_profile

    profile = load_profile(hw)
    update: dict[str, object] = {}
    if on_busy is not None:
        if on_busy not in ("wait", "refuse", "proceed"):
            raise InputError(f"--on-busy '{on_busy}': use wait, refuse or proceed")
        update["on_busy"] = on_busy
    if max_wait_s is not None:
        update["max_wait_s"] = max_wait_s
    if not update:
        return profile
    return profile.model_copy(update={"interference":
                                      profile.interference.model_copy(update=update)})


profile_app = typer.Typer(name="profile", invoke_without_command=True,
                          help="Time every layer variant of a model at every workload of a "
                               "hardware profile (resumable); export/import measurements.")


@profile_app.callback()
def profile_cmd(
    ctx: typer.Context,
    hw: str | None = typer.Option(None, "--hw", help="Hardware profile name or YAML path."),
    model: str = MODEL_OPT,
    budget_min: float | None = typer.Option(None, "--budget-min", min=0.05,
                                            help="Stop within this many minutes; a re-run "
                                                 "resumes."),
    force: bool = FORCE_OPT,
    executor: str | None = EXECUTOR_OPT,
    scheduler: str | None = SCHEDULER_OPT,
    workers: int | None = WORKERS_OPT,
    retries: int = RETRIES_OPT,
    on_busy: str | None = ON_BUSY_OPT,
    max_wait_s: float | None = MAX_WAIT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Profile layers: `hwnas profile --hw P --model M [--budget-min N]`.

    Before each workload group the machine is read for other work (CPU use of other
    processes, hypervisor steal); when busy, the command waits (--on-busy) and every record
    carries its readings."""
    if ctx.invoked_subcommand is not None:
        return
    if hw is None:
        from hwnas.errors import InputError
        raise InputError("missing option '--hw' (a hardware profile: see `hwnas hw list`)")
    from hwnas.profilers import profile_layers
    from hwnas.profilers.shape import ModelShape
    from hwnas.store import open_store

    where = executor_spec(executor, scheduler, workers, retries)
    hw_profile = with_interference(hw, on_busy, max_wait_s)
    shape = ModelShape.load(model)
    budget_s = None if budget_min is None else budget_min * 60.0
    try:
        with open_store() as store, _progress_bar() as progress:
            if where.name == "local":
                summary = profile_layers(hw_profile, shape, store, budget_s=budget_s,
                                         progress=progress, force=force)
            else:  # each workload group is a timing job on a worker of this hardware
                from hwnas.executors import open_executor
                from hwnas.profilers.scaleout import profile_layers_on

                with open_executor(where, hw=[hw_profile.name]) as ex:
                    summary = profile_layers_on(ex, hw_profile, shape, store,
                                                budget_s=budget_s, progress=progress,
                                                force=force)
    except KeyboardInterrupt:
        # typer turns KeyboardInterrupt into a return value the CLI's main drops; Abort
        # reaches main, which exits 130. Every finished record is already committed.
        print("interrupted: every measurement finished so far is saved; re-run the same "
              "command to resume", file=sys.stderr)
        raise typer.Abort() from None
    if as_json:
        print_json(summary.to_dict())
        return
    _print_summary(summary)


class _progress_bar:
    """A rich progress bar with an ETA on stderr; the callable `profile_layers` reports to."""

    def __enter__(self) -> Any:
        self.bar = progress_bar(40)
        self.bar.__enter__()
        self.task = self.bar.add_task("profiling", total=None)
        return self.update

    def update(self, ev: ProgressEvent) -> None:
        self.bar.update(self.task, completed=ev.done, total=ev.total, description=ev.what)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)


def _print_summary(s: Any) -> None:
    status = "complete" if s.complete else (
        f"{s.missing} left for a re-run" if s.missing else f"{len(s.errors)} errors")
    rows: list[list[Any]] = [["measurements", f"{s.total} planned, {s.already} already stored, "
                             f"{s.measured} measured now"],
            ["noisy", f"{s.noisy} flagged (kept, marked), {s.remeasured} re-measured"],
            ["busy machine", (f"{s.busy} measured while other work used the machine "
                              "(kept, marked)" if s.busy else "none: the machine was quiet")
             + (f"; waited {s.waited_s:.0f} s for quiet" if s.waited_s else "")],
            ["failed (out of memory)", len(s.failed)], ["errors", len(s.errors)],
            ["time", f"{s.elapsed_s:.1f} s" + (f" of {s.budget_s:.0f} s budget"
                                             if s.budget_s else "")],
            ["status", status]]
    table(f"profile {s.hw} / {s.model}", ["", ""], rows)
    for e in s.errors[:5]:
        err_console.print(f"error: {e}", markup=False)
    for m in s.fingerprint_mismatch:
        err_console.print(f"warning: fingerprint differs (--force): {m}", markup=False)
    if s.busy:
        err_console.print(f"warning: {s.busy} of {s.measured} records were timed on a busy "
                          "machine (marked busy); their figures may be slow. To replace "
                          "them, profile again on a quiet machine into a fresh cache "
                          "(--cache-dir DIR).",
                          markup=False)


@profile_app.command("export")
def export_cmd(
    path: Path = typer.Argument(..., help="Output .parquet or .csv file."),
    hw: str | None = typer.Option(None, "--hw", help="Only this hardware profile."),
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model's shape."),
    as_json: bool = JSON_OPT,
) -> None:
    """Write measurements to Parquet/CSV to share a device's dataset."""
    from hwnas.store import open_store

    arch = _arch_key(model) if model else None
    with open_store() as store:
        n = store.export_table("measurements", path, hw=_hw_name(hw), model=arch)
    if as_json:
        print_json({"path": str(path), "rows": n})
    else:
        console.print(f"exported {n} measurements to {path}")


@profile_app.command("import")
def import_cmd(path: Path = typer.Argument(..., help="A .parquet or .csv export."),
               as_json: bool = JSON_OPT) -> None:
    """Add a shared export's measurements to the store (existing keys are skipped)."""
    from hwnas.store import open_store

    with open_store() as store:
        n = store.import_table("measurements", path)
    if as_json:
        print_json({"path": str(path), "added": n})
    else:
        console.print(f"imported {n} new measurements from {path}")


def _arch_key(model: str) -> str:
    from hwnas.profilers.shape import ModelShape
    return ModelShape.load(model).arch.key()


def _hw_name(hw: str | None) -> str | None:
    if hw is None:
        return None
    from hwnas.hw_profiles import load_profile
    return load_profile(hw).name


def measure_cmd(
    hw: str = HW_OPT,
    model: str = MODEL_OPT,
    subnet: str = typer.Option(..., "--subnet", help="Subnet spec: inline JSON or a file."),
    primary_only: bool = typer.Option(False, "--primary-only", help="Time only the two "
                                                                    "workloads of the primary "
                                                                    "metric."),
    store_it: bool = typer.Option(True, "--store/--no-store", help="Keep the records in the "
                                  "store and reuse stored ones (shown as 'stored' with their "
                                  "date). --no-store always times afresh and keeps nothing."),
    force: bool = FORCE_OPT,
    on_busy: str | None = ON_BUSY_OPT,
    max_wait_s: float | None = MAX_WAIT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Time one whole subnet for real: latency_ms (primary metric) and every workload, each
    the profile's `timer.statistic` (median, or min) of its timed runs.

    A shared machine's speed drifts over minutes, so each run also times the profile's
    reference layer beside the subnet. When the store holds this profile's layer profile,
    every figure is also given on the profile's footing (`profile_latency_ms`: the speed the
    machine had when it was profiled, which is what `hwnas predict` stands for), with the
    machine's speed then relative to that run.

    With the store (the default), a workload already measured on this machine is read back,
    not timed again: its row says 'stored' and when it was taken. For a fresh figure use
    --no-store (the layer profile is still read for the footing; nothing is written)."""
    from hwnas.paths import store_path
    from hwnas.profilers import measure_subnet
    from hwnas.profilers.footing import BESIDE, profile_reference
    from hwnas.profilers.subnet import SubnetLatency
    from hwnas.store import open_store
    from hwnas.supernet import SubnetSpec
    from hwnas.supernet.supernet import Supernet

    profile = with_interference(hw, on_busy, max_wait_s)  # a bad profile fails before the
    spec = SubnetSpec.parse(subnet)  # model loads
    sn = Supernet.load(model)
    which = "primary" if primary_only else "all"
    res: SubnetLatency
    if store_it:
        with open_store() as store:
            res = measure_subnet(profile, sn, spec, store=store, workloads_=which, force=force)
    else:
        footing = None
        if store_path().is_file():
            with open_store() as store:
                footing = profile_reference(store, profile, sn.arch.key())
        res = measure_subnet(profile, sn, spec, workloads_=which, force=force,
                             footing=footing)
    statistic = profile.timer.statistic
    if as_json:
        # `per_workload` keeps its name (scripts read it); `statistic` says what it holds
        print_json({**res.to_dict(), "statistic": statistic})
        return
    d = res.to_dict()
    footed = bool(res.profile_per_workload)
    rows: list[list[object]] = [
        [name, f"{ms:.3f}", *([_footed(res, name)] if footed else []), _notes(d, name)]
        for name, ms in res.per_workload.items()]
    rows.append(["latency_ms (primary)", f"{res.latency_ms:.3f}",
                 *([_fmt_ms(res.profile_latency_ms)] if footed else []), res.primary])
    cols = ["workload", f"{statistic} ms", *(["at profile speed ms (speed)"] if footed else []),
            ""]
    table(f"subnet {res.subnet_key} on {res.hw}", cols, rows)
    if footed:
        err_console.print("note: 'at profile speed' puts each figure on the footing of this "
                          f"profile's layer profiling run, by "
                          f"{BESIDE[profile.timer.subnet_reference]} timed beside it; compare "
                          "it with `hwnas predict`.", markup=False)
    elif not profile.timer.rescale_subnets:
        err_console.print(f"note: '{profile.name}' reads every figure as timed "
                          "(`timer.rescale_subnets: false`), as its predictions are; compare "
                          "them with `hwnas predict` on a quiet machine.", markup=False)
    else:
        err_console.print(f"note: no layer profile of '{profile.name}' in the store, so "
                          "figures are as timed only; `hwnas profile` makes them comparable "
                          "with predictions.", markup=False)
    if any(d["cached"].values()):
        err_console.print("note: rows marked 'stored' are earlier measurements read from the "
                          "store, not timed now; `--no-store` takes a fresh one.", markup=False)
    if res.busy:
        err_console.print("warning: timed while other work used the machine (rows marked "
                          "'busy'); the figures may be slow.", markup=False)


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _footed(res: Any, name: str) -> str:
    v = res.profile_per_workload.get(name)
    return "-" if v is None else f"{v:.3f} ({res.speed[name]:.2f}x)"


def _notes(d: Any, name: str) -> str:
    notes = []
    if d["cached"].get(name):
        notes.append(f"stored {d['measured_at'].get(name, 'unknown')}")
    if d["busy"].get(name):
        notes.append("busy")
    if d["noisy"].get(name):
        notes.append("noisy")
    return ", ".join(notes)


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app)
    app.command("measure")(measure_cmd)
