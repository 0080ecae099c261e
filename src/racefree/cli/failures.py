"""Every failure as one line on stderr and an exit status (:mod:`.exits`), never a traceback.

A catalog error reads the same in both modes -- ``CODE: detail`` -- whether
the domain raised it here (local mode) or the server answered it (remote).
"""

from __future__ import annotations

from pydantic import ValidationError

from racefree.cli.exits import ExitCode, for_status
from racefree.client import ApiError, RacefreeClientError, TransportError
from racefree.core.errors import RacefreeError

PREFIX = "racefree: error: "


class CliError(Exception):
    """A failure of the command itself, with its exit status."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = ExitCode.USAGE


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit status and the one-line message of ``exc``."""
    if isinstance(exc, CliError):
        return exc.exit_code, str(exc)
    if isinstance(exc, ApiError):
        return for_status(exc.status), f"{exc.error_code}: {exc.detail or exc.hint or ''}"
    if isinstance(exc, TransportError):
        return ExitCode.UNAVAILABLE, f"no answer from the server: {exc}"
    if isinstance(exc, RacefreeClientError):
        return ExitCode.FAILURE, str(exc)
    if isinstance(exc, RacefreeError):  # local mode: the domain's own catalog error
        return for_status(exc.status), str(exc)
    if isinstance(exc, ValidationError):  # an answer this client cannot read
        return ExitCode.FAILURE, f"unexpected answer: {exc.error_count()} field(s) do not fit"
    return ExitCode.FAILURE, f"{type(exc).__name__}: {exc}"


def line(message: str) -> str:
    """``message`` as the one line the CLI prints (control characters flattened)."""
    flat = " ".join(message.split())
    return f"{PREFIX}{flat}\n"
