"""`hwnas store check | repair`: find the rows of the store no stage can read; quarantine them."""

from __future__ import annotations

import typer

from hwnas.cli._common import JSON_OPT, console, print_json, table
from hwnas.errors import InputError

store_app = typer.Typer(name="store", no_args_is_help=True,
                        help="Check the store (measurements, evaluations, runs) and repair it "
                             "by moving bad rows into quarantine.")


@store_app.command("check")
def check_cmd(as_json: bool = JSON_OPT) -> None:
    """Read every row; report each one that is damaged or that no stage could use."""
    from hwnas.paths import store_path
    from hwnas.store.check import check_store

    report = check_store(store_path())
    if as_json:
        print_json(report.to_dict())
    else:
        table(f"store {report.path}", ["table", "good rows"],
              [[t, n] for t, n in report.rows.items()])
    if report.ok:
        if not as_json:
            console.print("store is sound" if report.exists else "no store yet")
        return
    first = (f"the file is damaged ({report.damaged})" if report.damaged else
             f"table '{report.problems[0].table}', key '{report.problems[0].key}': "
             f"{report.problems[0].reason}")
    raise InputError(f"store {report.path}: {len(report.problems)} bad row(s); first: {first}; "
                     "run `hwnas store repair` to quarantine them and keep every good row")


@store_app.command("repair")
def repair_cmd(as_json: bool = JSON_OPT) -> None:
    """Move bad rows into the `quarantine` table; a damaged file is rebuilt (and kept aside)."""
    from hwnas.paths import store_path
    from hwnas.store.check import repair_store

    report = repair_store(store_path())
    if as_json:
        print_json(report.to_dict())
        return
    kept = ", ".join(f"{n} {t}" for t, n in report.kept.items())
    console.print(f"store {report.path}: kept {kept}; quarantined {report.quarantined} row(s)")
    if report.damaged_copy:
        console.print(f"the damaged file is kept as {report.damaged_copy}")


def register(app: typer.Typer) -> None:
    app.add_typer(store_app)
