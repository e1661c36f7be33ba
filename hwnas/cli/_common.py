"""Shared pieces of the CLI: the app, output helpers and common options."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

import hwnas

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware neural architecture search for LLaMA-family LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

console = Console(stderr=False)
err_console = Console(stderr=True)


def fail(message: str) -> None:
    """One line on stderr, no traceback."""
    line = " ".join(str(message).splitlines())
    print(f"hwnas: error: {line}", file=sys.stderr)


def print_json(data: Any) -> None:
    """Strict JSON: NaN and infinities become null, so every JSON parser reads the output."""
    from hwnas.safe_io import dumps_strict

    plain = json.loads(json.dumps(data, default=_json_default))
    sys.stdout.write(dumps_strict(plain, indent=2) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    console.print(t)


def quiet_libraries() -> None:
    """Silence transformers' progress bars and info logs for CLI output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def version_callback(value: bool) -> None:
    if value:
        print(f"hwnas {hwnas.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=version_callback,
                                 is_eager=True, help="Print the version and exit."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", envvar="HWNAS_CACHE",
                                          help="Cache and store folder [default: "
                                               "~/.cache/hwnas]."),
) -> None:
    if cache_dir is not None:
        os.environ["HWNAS_CACHE"] = str(cache_dir)
    quiet_libraries()


JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
MODEL_OPT = typer.Option("smollm2-135m", "--model", "-m",
                         help="Known model name, local HF directory or hub id.")


def progress_bar(label_width: int = 16) -> Any:
    """A rich progress bar on stderr with count, elapsed time and ETA (not yet started)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(f"{{task.description:<{label_width}.{label_width}}}"),
                    BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=err_console)
