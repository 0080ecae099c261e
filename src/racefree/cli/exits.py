"""Exit statuses: one per class of failure, so a script can tell them apart.

The class of an error answer follows its HTTP status -- the catalog's status
for a local error, the server's for a remote one -- so local and remote mode
exit alike. The table is printed by ``racefree --help`` and in docs/cli.md.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    CONFLICT = 3
    NOT_FOUND = 4
    AUTH = 5
    UNAVAILABLE = 6
    INTERRUPTED = 130


#: (status, what it means) for the help epilog and docs/cli.md
TABLE: tuple[tuple[ExitCode, str], ...] = (
    (ExitCode.OK, "success"),
    (ExitCode.FAILURE, "refused or failed otherwise (e.g. 400 VALIDATION_ERROR, 422)"),
    (ExitCode.USAGE, "usage: unknown command or option, missing or bad argument"),
    (ExitCode.CONFLICT, "conflict: 409, 410, 412, 428 (e.g. KILL_SWITCH_ALREADY_ACTIVE)"),
    (ExitCode.NOT_FOUND, "not found: 404 (e.g. AGENT_NOT_FOUND, ROUTE_NOT_FOUND)"),
    (ExitCode.AUTH, "authentication or permission: 401, 403 (e.g. INVALID_TOKEN)"),
    (
        ExitCode.UNAVAILABLE,
        "unavailable: 5xx, 429, no connection, database unusable (retry later)",
    ),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C)"),
)

_BY_STATUS = {
    404: ExitCode.NOT_FOUND,
    401: ExitCode.AUTH,
    403: ExitCode.AUTH,
    409: ExitCode.CONFLICT,
    410: ExitCode.CONFLICT,
    412: ExitCode.CONFLICT,
    428: ExitCode.CONFLICT,
    429: ExitCode.UNAVAILABLE,
}


def for_status(status: int) -> ExitCode:
    """The exit status of an error answer with HTTP ``status``."""
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return _BY_STATUS.get(status, ExitCode.FAILURE)


def describe() -> str:
    """The table as text (one line per status)."""
    return "\n".join(f"  {int(code):>3}  {meaning}" for code, meaning in TABLE)
