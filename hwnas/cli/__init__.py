"""The `hwnas` command line: thin. Each module under `hwnas.cli` registers its commands;
they build typed values from arguments, call the library and print what comes back
(rich tables for people, `--json` for scripts)."""

from __future__ import annotations

import importlib
import sys

import click
import typer

from hwnas.cli._common import app, fail

# One line per command module; each defines `register(app)`.
COMMAND_MODULES = (
    "hwnas.cli.models",
    "hwnas.cli.predictors",
)


def _build() -> typer.Typer:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main(argv: list[str] | None = None) -> int:
    from hwnas.errors import InputError

    _build()
    try:
        app(args=argv, prog_name="hwnas", standalone_mode=False)
    except InputError as e:
        fail(str(e))
        return 2
    except click.exceptions.NoArgsIsHelp as e:
        # `hwnas CMD` with no arguments prints that command's help
        print(e.ctx.get_help() if e.ctx else "", file=sys.stderr)
        return 2
    except click.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "hwnas"
        fail(f"{e.format_message()} (see `{cmd} --help`)")
        return 2
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.Abort:
        fail("interrupted")
        return 130
    except KeyboardInterrupt:
        fail("interrupted; re-run with the same arguments to resume")
        return 130
    return 0


def entry() -> None:
    sys.exit(main())
