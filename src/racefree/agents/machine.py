"""The agent status machine: the table below is the whole lifecycle."""

from __future__ import annotations

from enum import StrEnum

from racefree.agents.errors import AgentCode
from racefree.core.audit import Severity
from racefree.core.errors import MachineCode
from racefree.core.machine import StateMachine, move
from racefree.owners.errors import OwnerCode

ACTIVE = "ACTIVE"
SUSPENDED = "SUSPENDED"
TERMINATED = "TERMINATED"

#: Why an agent is suspended: by an operator here, by the kill switch set-based elsewhere.
OPERATOR_SUSPENSION = "operator"
KILL_SWITCH_SUSPENSION = "kill_switch"


class Move(StrEnum):
    """The agent machine's transition names."""

    SUSPEND = "suspend"
    ACTIVATE = "activate"
    TERMINATE = "terminate"


_TERMINATED_IS_GONE = {TERMINATED: AgentCode.AGENT_TERMINATED}

AGENT_MACHINE = StateMachine(
    "agent",
    table="agents",
    key_column="id",
    state_column="status",
    states=(ACTIVE, SUSPENDED, TERMINATED),
    initial=ACTIVE,
    not_found=OwnerCode.AGENT_NOT_FOUND,
    transitions=(
        move(
            Move.SUSPEND,
            ACTIVE,
            SUSPENDED,
            conflict=AgentCode.AGENT_SUSPENDED,
            conflict_by_state=_TERMINATED_IS_GONE,
            audit_event="AGENT_SUSPENDED",
            severity=Severity.WARNING,
        ),
        # activating an ACTIVE agent is a state conflict with current/requested/allowed details
        move(
            Move.ACTIVATE,
            SUSPENDED,
            ACTIVE,
            conflict=MachineCode.INVALID_STATE_TRANSITION,
            conflict_by_state=_TERMINATED_IS_GONE,
            audit_event="AGENT_ACTIVATED",
        ),
        move(
            Move.TERMINATE,
            (ACTIVE, SUSPENDED),
            TERMINATED,
            conflict=AgentCode.AGENT_TERMINATED,
            audit_event="AGENT_TERMINATED",
            severity=Severity.WARNING,
        ),
    ),
)
