"""Suspend, activate, terminate: moves of :data:`AGENT_MACHINE`, each one CAS."""

from __future__ import annotations

from racefree.agents.machine import AGENT_MACHINE, OPERATOR_SUSPENSION, Move
from racefree.agents.model import Agent
from racefree.agents.registry import get
from racefree.core.db import Row, Tx
from racefree.core.machine import AuditContext
from racefree.sessions.revocation import of_agent, revoke_where
from racefree.system.kill_switch import hold_normal

TERMINATION_REVOKE_REASON = "agent_terminated"


def suspend(
    tx: Tx,
    agent_id: str,
    *,
    now: int,
    reason: str = OPERATOR_SUSPENSION,
    actor: str | None = None,
) -> Agent:
    """ACTIVE -> SUSPENDED. Its sessions stay, but authenticate no more while it is suspended."""
    AGENT_MACHINE.transition(
        tx,
        Move.SUSPEND,
        agent_id,
        now=now,
        values={"suspension_reason": reason},
        audit_context=AuditContext(
            actor=actor, subjects={"agent_id": agent_id}, details={"reason": reason}
        ),
    )
    return get(tx, agent_id)


def activate(tx: Tx, agent_id: str, *, now: int, actor: str | None = None) -> Agent:
    """SUSPENDED -> ACTIVE, whatever suspended it; refused (503) unless the kill switch is NORMAL.

    The switch is held NORMAL until commit (:func:`hold_normal`), so an
    activation never finds an agent re-activated past its cascade.
    """
    hold_normal(tx)
    AGENT_MACHINE.transition(
        tx,
        Move.ACTIVATE,
        agent_id,
        now=now,
        values={"suspension_reason": None},
        audit_context=AuditContext(actor=actor, subjects={"agent_id": agent_id}),
    )
    return get(tx, agent_id)


def terminate(tx: Tx, agent_id: str, *, now: int, actor: str | None = None) -> Agent:
    """ACTIVE | SUSPENDED -> TERMINATED, revoking its open sessions in the same transaction."""

    def revoke_sessions(inner: Tx, row: Row) -> int:
        return revoke_where(inner, of_agent(row["id"]), now=now, reason=TERMINATION_REVOKE_REASON)

    hold_normal(tx)  # refused (503) unless the kill switch is NORMAL, in this transaction
    AGENT_MACHINE.transition(
        tx,
        Move.TERMINATE,
        agent_id,
        now=now,
        values={"suspension_reason": None},
        cascades={"sessions_revoked": revoke_sessions},
        audit_context=AuditContext(actor=actor, subjects={"agent_id": agent_id}),
    )
    return get(tx, agent_id)
