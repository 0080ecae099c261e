"""Every failure as one line on stderr and an exit status (:mod:`.exits`), never a traceback.

A catalog error reads the same in both modes -- ``CODE: detail`` -- whether
the domain raised it here (local mode) or the server answered it (remote).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
        message = f"{exc.error_code}: {exc.detail or exc.hint or ''}"
        return for_status(exc.status), message + _issues(exc.detail, exc.details)
    if isinstance(exc, TransportError):
        return ExitCode.UNAVAILABLE, f"no answer from the server: {exc}"
    if isinstance(exc, RacefreeClientError):
        return ExitCode.FAILURE, str(exc)
    if isinstance(exc, RacefreeError):  # local mode: the domain's own catalog error
        return for_status(exc.status), str(exc) + _issues(exc.message, exc.details)
    if isinstance(exc, ValidationError):  # an answer this client cannot read
        return ExitCode.FAILURE, f"unexpected answer: {exc.error_count()} field(s) do not fit"
    return ExitCode.FAILURE, f"{type(exc).__name__}: {exc}"


def _issues(detail: str | None, details: Mapping[str, Any] | None) -> str:
    """`` (name: too long; ...)``: where ``details.issues`` point, when the detail is the
    catalog's "details.issues says where" (a specific detail already says it).

    An issue carries its location, message and type, never the input (it may be a secret).
    """
    from racefree.core.errors import GeneralCode, spec_of

    if detail != spec_of(GeneralCode.VALIDATION_ERROR).detail:
        return ""
    issues = (details or {}).get("issues")
    if not isinstance(issues, list) or not issues:
        return ""
    said = []
    for issue in issues:
        if not isinstance(issue, Mapping):
            continue
        loc = [str(part) for part in issue.get("loc") or () if part != "body"]
        msg = str(issue.get("msg") or issue.get("type") or "invalid")
        said.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return f" ({'; '.join(said)})" if said else ""


def line(message: str) -> str:
    """``message`` as the one line the CLI prints (control characters flattened)."""
    flat = " ".join(message.split())
    return f"{PREFIX}{flat}\n"
