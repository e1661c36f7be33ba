"""The `hwnas` command line: thin. Each module under `hwnas.cli` registers its commands;
they build typed values from arguments, call the library and print what comes back
(rich tables for people, `--json` for scripts)."""

from __future__ import annotations

import importlib
import os
import sys

import typer

from hwnas.cli._common import app, fail

try:  # typer >= 0.20 vendors click; older releases raise click's own exceptions
    from typer._click import exceptions as _cli_errors
except ImportError:  # pragma: no cover
    from click import exceptions as _cli_errors  # type: ignore[no-redef]

# One line per command module; each defines `register(app)`.
COMMAND_MODULES = (
    "hwnas.cli.hw",
    "hwnas.cli.profile",
    "hwnas.cli.models",
    "hwnas.cli.predictors",
    "hwnas.cli.evaluate",
    "hwnas.cli.search",
    "hwnas.cli.demo",
    "hwnas.cli.supernet",
    "hwnas.cli.store",
)


_built = False


def _build() -> typer.Typer:
    """Register every command module once (a second `main()` in one process, as in the tests,
    must not register them again: typer would keep every copy and slow each call)."""
    global _built
    if not _built:
        for name in COMMAND_MODULES:
            importlib.import_module(name).register(app)
        _built = True
    return app


def main(argv: list[str] | None = None) -> int:
    from hwnas.cli.guard import environment_error, internal_error, no_stdin

    _build()
    try:
        with no_stdin():  # nothing hwnas runs may prompt: a library asking [y/N] reads EOF
            return _run(argv)
    except Exception as e:  # noqa: BLE001 (the last line of defence: one line, no traceback)
        if os.environ.get("HWNAS_DEBUG"):
            raise
        message = environment_error(e)
        if message is not None:
            fail(message)
            return 2
        fail(internal_error(e))
        return 1


def _run(argv: list[str] | None) -> int:
    from hwnas.errors import InputError, TryLater

    try:
        rv = app(args=argv, prog_name="hwnas", standalone_mode=False)
    except InputError as e:
        fail(str(e))
        return 2
    except TryLater as e:
        fail(str(e))
        return TryLater.exit_code
    except _cli_errors.NoArgsIsHelpError as e:
        # `hwnas CMD` with no arguments prints that command's help
        print(e.ctx.get_help() if e.ctx else "", file=sys.stderr)
        return 2
    except _cli_errors.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "hwnas"
        fail(f"{e.format_message()} (see `{cmd} --help`)")
        return 2
    except _cli_errors.ClickException as e:
        fail(e.format_message())
        return 2
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        fail("interrupted")
        return 130
    except KeyboardInterrupt:
        fail("interrupted; re-run with the same arguments to resume")
        return 130
    # without standalone mode, typer returns the exit code of typer.Exit / Ctrl-C
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())
