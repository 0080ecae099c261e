"""The kill switch's transition table (docs/state-machines.md).

Four moves, each a CAS on the expected state as the first write of its
transaction. ``ACTIVATED -> NORMAL`` is deliberately absent: the only way back
is recovery, which waits.
"""

from __future__ import annotations

from enum import StrEnum

from racefree.core.audit import Severity
from racefree.core.machine import StateMachine, move
from racefree.killswitch import metrics
from racefree.killswitch.errors import KillSwitchCode
from racefree.killswitch.status import ACTIVATED, NORMAL, RECOVERING, STATES


class Move(StrEnum):
    """The kill switch's transition names."""

    ACTIVATE = "activate"
    START_RECOVERY = "start_recovery"
    COMPLETE_RECOVERY = "complete_recovery"
    ROLL_BACK = "roll_back"


ACTIVATE = Move.ACTIVATE
START_RECOVERY = Move.START_RECOVERY
COMPLETE_RECOVERY = Move.COMPLETE_RECOVERY
ROLL_BACK = Move.ROLL_BACK

KILL_SWITCH = StateMachine(
    "kill_switch",
    table="kill_switch",
    key_column="scope",
    state_column="state",
    version_column="version",
    on_commit=metrics.moved,
    states=STATES,
    initial=NORMAL,
    transitions=(
        move(
            ACTIVATE,
            NORMAL,
            ACTIVATED,
            conflict=KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE,
            audit_event="KILL_SWITCH_ACTIVATED",
            severity=Severity.CRITICAL,
        ),
        move(
            START_RECOVERY,
            ACTIVATED,
            RECOVERING,
            conflict=KillSwitchCode.KILL_SWITCH_NOT_ACTIVE,
            conflict_by_state={RECOVERING: KillSwitchCode.RECOVERY_ALREADY_STARTED},
            audit_event="KILL_SWITCH_RECOVERY_STARTED",
            severity=Severity.WARNING,
        ),
        move(
            COMPLETE_RECOVERY,
            RECOVERING,
            NORMAL,
            conflict=KillSwitchCode.INVALID_RECOVERY_STATE,
            audit_event="KILL_SWITCH_RECOVERED",
            severity=Severity.WARNING,
        ),
        move(
            ROLL_BACK,
            RECOVERING,
            ACTIVATED,
            conflict=KillSwitchCode.INVALID_RECOVERY_STATE,
            audit_event="KILL_SWITCH_RECOVERY_ROLLED_BACK",
            severity=Severity.WARNING,
        ),
    ),
)
