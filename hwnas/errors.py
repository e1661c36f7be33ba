"""One root exception for hwnas; subclasses say what kind of problem it is.

`InputError` is the user's to fix (bad argument, bad file, missing data): the CLI prints its
message on one line and exits with code 2. `TryLater` is a state of the machine that passes
(it is busy with other work): one line, exit code 75 (EX_TEMPFAIL). Everything else is a bug
or an environment problem.
"""

from __future__ import annotations


class HwnasError(Exception):
    """Root of every error hwnas raises on purpose."""


class InputError(HwnasError, ValueError):
    """Bad input the user can fix. The message names the thing, the value and the fix."""


class TryLater(HwnasError):
    """The machine is not fit for the job now (busy with other work); running again later
    resumes where this run stopped."""

    exit_code = 75


class MissingDependencyError(InputError, ImportError):
    """An optional library is not installed."""

    def __init__(self, library: str, purpose: str, install: str) -> None:
        super().__init__(f"{purpose} needs the '{library}' library, which is not installed; "
                         f"install it with: {install}")
        self.library = library


class NotFoundError(InputError, KeyError):
    """A named thing (model, profile, task, run) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
