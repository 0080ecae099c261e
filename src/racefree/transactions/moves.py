"""The status moves that touch money, each one CAS with its reservation cascade.

Every function runs inside the caller's write transaction and raises the
machine's typed conflict when the transaction is not in a state it may leave.

Lock order on PostgreSQL: agent, session, then transaction row -- the order of
the kill switch's cascade (suspend agents, revoke sessions, cancel transactions
and release their reservations) -- so a move racing an activation queues
behind it instead of deadlocking with it. SQLite has one writer and needs no
ordering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from racefree.agents import availability
from racefree.autostop import enforcement
from racefree.core.condition import Condition
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError
from racefree.core.machine import AuditContext, Transition
from racefree.sessions import admission, spending
from racefree.transactions.machine import TRANSACTIONS, Move, Transaction

_RELEASE = {"released": admission.release}
_SETTLE = {"settled": admission.settle}


def context(txn: Transaction, actor: str, **details: Any) -> AuditContext:
    """The audit row's who and what for a move of ``txn``."""
    return AuditContext(
        actor=actor,
        subjects={"agent_id": txn.agent_id, "session_id": txn.session_id, "transaction_id": txn.id},
        details=details,
    )


#: ANDed into the CASes that start execution: a suspended agent's queued work waits.
AGENT_ACTIVE = Condition(availability.active_exists("transactions.agent_id"))


def agent_refusal(tx: Tx, agent_id: str) -> RacefreeError | None:
    """409 ``AGENT_SUSPENDED`` / 410 ``AGENT_TERMINATED`` when the agent may not spend now."""
    status = tx.scalar("SELECT status FROM agents WHERE id = :id", {"id": agent_id})
    return availability.unavailable(status, agent_id)


def lock_session(tx: Tx, txn: Transaction) -> None:
    """A mover's first lock (PostgreSQL): the session row, then the transaction (lock order)."""
    spending.lock(tx, Condition.of("id = :id", id=txn.session_id))


def end(
    tx: Tx,
    name: str,
    txn: Transaction,
    *,
    now: int,
    reason: str,
    actor: str,
    where: Condition | None = None,
    classify: Callable[[Tx, Transition], RacefreeError] | None = None,
) -> Transaction:
    """A terminal move (fail, cancel, reject, expire) that releases the reservation."""
    # a failure moves the agent's AutoStop figures: their locks come first (see autostop)
    watch = enforcement.watch(tx, txn.agent_id, now=now) if name == Move.FAIL else None
    lock_session(tx, txn)
    result = TRANSACTIONS.transition(
        tx,
        name,
        txn.id,
        now=now,
        values={"error": reason},
        where=where,
        classify=classify,
        cascades=_RELEASE,
        audit_context=context(txn, actor, reason=reason),
    )
    if watch is not None:
        enforcement.settled(
            tx, watch, status="FAILED", amount=txn.amount, destination=txn.destination, now=now
        )
    return Transaction.from_row(result.row)


def confirm(tx: Tx, txn: Transaction, *, now: int, reference: str | None) -> Transaction:
    """``SUBMITTED -> CONFIRMED``: the reserved amount becomes spent."""
    watch = enforcement.watch(tx, txn.agent_id, now=now)
    lock_session(tx, txn)
    result = TRANSACTIONS.transition(
        tx,
        Move.CONFIRM,
        txn.id,
        now=now,
        values={"confirmed_at": now, "reference": reference},
        cascades=_SETTLE,
        audit_context=context(txn, "executor"),
    )
    enforcement.settled(
        tx, watch, status="CONFIRMED", amount=txn.amount, destination=txn.destination, now=now
    )
    return Transaction.from_row(result.row)
