"""The system-wide refusal while the kill switch is engaged."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class SystemCode(Code):
    """The system-wide refusal while the kill switch is engaged."""

    SYSTEM_LOCKED = "SYSTEM_LOCKED"
    NOT_READY = "NOT_READY"


register(
    ErrorSpec(
        SystemCode.SYSTEM_LOCKED,
        503,
        "SYSTEM",
        False,
        "System locked",
        "the kill switch is engaged; only recovery and read routes are served",
    ),
    ErrorSpec(
        SystemCode.NOT_READY,
        503,
        "SYSTEM",
        True,
        "Not ready",
        "the database does not answer or its schema is not at this version's head",
    ),
)
