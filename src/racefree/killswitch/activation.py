"""Activation: ``NORMAL -> ACTIVATED`` and the cascade, in the caller's transaction.

:func:`activate` is also the hook for automatic rules: a rule that decides the
system must stop calls ``activate(tx, reason, now=...)`` (actor ``auto``) and
goes through the very same CAS, so a rule racing an operator is just one more
loser with ``KILL_SWITCH_ALREADY_ACTIVE``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from racefree.core.db import Database, Row, Tx
from racefree.core.ids import new_id
from racefree.core.machine import AuditContext
from racefree.killswitch import cascade
from racefree.killswitch.machine import ACTIVATE, KILL_SWITCH
from racefree.killswitch.status import GLOBAL_SCOPE

AUTO_ACTOR = "auto"


@dataclass(frozen=True, slots=True)
class Activation:
    state: str
    activation_id: str
    activated_at: int
    reason: str
    actor: str
    sessions_revoked: int
    transactions_cancelled: int
    agents_suspended: int
    duration_ms: float


def activate(tx: Tx, reason: str, *, now: int, actor: str = AUTO_ACTOR) -> Activation:
    """Engage the kill switch in ``tx``; 409 ``KILL_SWITCH_ALREADY_ACTIVE`` if it is engaged."""
    started = time.perf_counter()

    def step(fn: Callable[[Tx, int], int]) -> Callable[[Tx, Row], int]:
        return lambda inner, _row: fn(inner, now)

    def elapsed_ms(_tx: Tx, _row: Row) -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    activation_id = new_id()
    result = KILL_SWITCH.transition(
        tx,
        ACTIVATE,
        GLOBAL_SCOPE,
        now=now,
        values={
            "activation_id": activation_id,
            "reason": reason,
            "actor": actor,
            "activated_at": now,
            "recovery_started_at": None,
            "recovery_eligible_at": None,
        },
        # Order matters (see cascade): agents, then sessions, then
        # transactions; the duration is taken last.
        cascades={
            "agents_suspended": step(cascade.suspend_agents),
            "sessions_revoked": step(cascade.revoke_sessions),
            "transactions_cancelled": step(cascade.cancel_transactions),
            "duration_ms": elapsed_ms,
        },
        audit_context=AuditContext(
            actor=actor, details={"reason": reason, "activation_id": activation_id}
        ),
    )
    effects: dict[str, Any] = result.effects
    return Activation(
        state=result.row["state"],
        activation_id=activation_id,
        activated_at=now,
        reason=reason,
        actor=actor,
        sessions_revoked=effects["sessions_revoked"],
        transactions_cancelled=effects["transactions_cancelled"],
        agents_suspended=effects["agents_suspended"],
        duration_ms=effects["duration_ms"],
    )


def activate_now(db: Database, reason: str, *, now: int, actor: str = AUTO_ACTOR) -> Activation:
    """:func:`activate` in a write transaction of its own."""
    with db.write() as tx:
        return activate(tx, reason, now=now, actor=actor)
