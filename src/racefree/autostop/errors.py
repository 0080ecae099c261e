"""AutoStop codes."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class AutoStopCode(Code):
    """AutoStop codes."""

    AUTO_STOP_RULE_NOT_FOUND = "AUTO_STOP_RULE_NOT_FOUND"


register(
    ErrorSpec(
        AutoStopCode.AUTO_STOP_RULE_NOT_FOUND,
        404,
        "AUTO_STOP",
        False,
        "Auto-stop rule not found",
        "the auto-stop rule does not exist",
    ),
)
