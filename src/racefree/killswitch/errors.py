"""Kill switch and recovery conflicts (domain SYSTEM)."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class KillSwitchCode(Code):
    """Kill switch and recovery conflicts."""

    KILL_SWITCH_ALREADY_ACTIVE = "KILL_SWITCH_ALREADY_ACTIVE"
    KILL_SWITCH_NOT_ACTIVE = "KILL_SWITCH_NOT_ACTIVE"
    RECOVERY_ALREADY_STARTED = "RECOVERY_ALREADY_STARTED"
    INVALID_RECOVERY_STATE = "INVALID_RECOVERY_STATE"
    RECOVERY_WAIT_REQUIRED = "RECOVERY_WAIT_REQUIRED"


register(
    ErrorSpec(
        KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE,
        409,
        "SYSTEM",
        False,
        "Kill switch already active",
        "the kill switch is already engaged",
    ),
    ErrorSpec(
        KillSwitchCode.KILL_SWITCH_NOT_ACTIVE,
        409,
        "SYSTEM",
        False,
        "Kill switch not active",
        "the kill switch is not engaged",
    ),
    ErrorSpec(
        KillSwitchCode.RECOVERY_ALREADY_STARTED,
        409,
        "SYSTEM",
        False,
        "Recovery already started",
        "another request started recovery first",
    ),
    ErrorSpec(
        KillSwitchCode.INVALID_RECOVERY_STATE,
        409,
        "SYSTEM",
        False,
        "Invalid recovery state",
        "the kill switch is not recovering",
    ),
    ErrorSpec(
        KillSwitchCode.RECOVERY_WAIT_REQUIRED,
        409,
        "SYSTEM",
        True,
        "Recovery wait required",
        "recovery cannot complete before recovery_eligible_at",
    ),
)
