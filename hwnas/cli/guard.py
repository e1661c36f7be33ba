"""The CLI's last line of defence: no prompt can read stdin, and an exception that no command
turned into an `InputError` still ends as one line on stderr, never a traceback.

Problems of the environment (a file that cannot be written, a damaged store) are the user's to
fix: exit 2 with a line that names the file. Anything else is a bug in hwnas: exit 1 with one
line that says so; `HWNAS_DEBUG=1` shows the traceback.
"""

from __future__ import annotations

import io
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_stdin() -> Iterator[None]:
    """Run with an empty stdin: a library that prompts ("run custom code? [y/N]") reads EOF."""
    saved = sys.stdin
    sys.stdin = io.StringIO("")
    try:
        yield
    finally:
        sys.stdin = saved


def environment_error(e: BaseException) -> str | None:
    """One line for a problem of the machine or its files, or None when `e` is not one."""
    if isinstance(e, sqlite3.DatabaseError):
        from hwnas.paths import ENV_VAR

        return (f"the store is damaged or unreadable ({e}); run `hwnas store check` and "
                f"`hwnas store repair`, or point {ENV_VAR} / --cache-dir at another folder")
    if isinstance(e, OSError):
        what = e.filename if e.filename is not None else "a file"
        reason = e.strerror or str(e) or type(e).__name__
        if isinstance(e, PermissionError):
            fix = "make it writable, or point HWNAS_CACHE / --cache-dir or --out elsewhere"
        elif e.errno == 28:  # ENOSPC
            fix = "free some disk space"
        else:
            fix = "check the path"
        return f"cannot use {what}: {reason}; {fix}"
    if isinstance(e, MemoryError):
        return "out of memory; give a smaller model, subnet or --limit"
    return None


def internal_error(e: BaseException) -> str:
    text = " ".join(str(e).split())[:300]
    return (f"internal error ({type(e).__name__}: {text}); this is a bug in hwnas, please "
            "report it; set HWNAS_DEBUG=1 to see the traceback")
