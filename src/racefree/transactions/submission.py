"""Submitting a transaction: one write transaction that inserts it and reserves its amount.

1. INSERT the transaction ``PENDING`` -- with an ``Idempotency-Key`` this also
   claims the key (:mod:`racefree.transactions.idempotency`);
2. check-and-reserve on the session row, one conditional UPDATE
   (:mod:`racefree.sessions.admission`); a refusal rolls the INSERT back;
3. queued tiers move ``PENDING -> QUEUED`` (``execute_after_ms`` / ``expires_at_ms``)
   and their 202 reply is stored for replays; an audit row records the creation.

INSTANT and NOTIFY transactions are then run by the execution loop.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from racefree.autostop import enforcement
from racefree.core import amounts, audit
from racefree.core.audit import Severity
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError, invalid_field
from racefree.core.ids import new_id
from racefree.sessions import admission
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import Constraints
from racefree.transactions import idempotency, metrics, moves
from racefree.transactions.errors import TransactionCode
from racefree.transactions.idempotency import Reply
from racefree.transactions.machine import TRANSACTIONS, Move, Status, Tier, Transaction
from racefree.transactions.settings import TransactionSettings
from racefree.transactions.tiers import RUN_NOW, tier_for, timeout_s


@dataclass(frozen=True, slots=True)
class Request:
    """A validated submission body."""

    type: str
    amount: int
    destination: str


_INSERT = (
    "INSERT INTO transactions (id, agent_id, session_id, type, amount, destination, status,"
    " tier, attempts, idempotency_key, request_hash, deadline_at_ms, created_at, updated_at)"
    " VALUES (:id, :agent_id, :session_id, :type, :amount, :destination, :status, :tier, 0,"
    " :key, :request_hash, :deadline_at_ms, :now, :now)"
)


@dataclass(frozen=True, slots=True)
class Refused:
    """Not admitted by an AutoStop rule; its action is in the transaction: commit, then raise."""

    error: RacefreeError


def submit(
    tx: Tx,
    settings: TransactionSettings,
    *,
    session_id: str,
    request: Request,
    idempotency_key: str | None,
    now: int,
    now_ms: int | None = None,
) -> Transaction | Reply | Refused:
    """Create and admit a transaction in ``tx``; a reused key returns what it answered before."""
    now_ms = now * 1000 if now_ms is None else now_ms  # deadlines are milliseconds
    if not amounts.in_range(request.amount):  # the API's pattern says so too; library callers
        raise invalid_field("amount", amounts.RANGE_MESSAGE)
    session = tx.one(
        "SELECT agent_id, constraints FROM sessions WHERE id = :id", {"id": session_id}
    )
    if session is None:
        raise RacefreeError(SessionCode.SESSION_NOT_FOUND)
    # AutoStop's admission rules, counted under the agent's figures lock (the first lock)
    watch = enforcement.watch(tx, session["agent_id"], now=now)
    verdict = enforcement.admit(tx, watch, amount=request.amount, now=now)
    if verdict.refuses:
        return Refused(verdict.refusal(session["agent_id"]))
    tier = tier_for(request.amount, settings)
    txn_id = new_id()
    request_hash = idempotency.fingerprint(asdict(request))
    params = {
        "id": txn_id,
        "agent_id": session["agent_id"],
        "session_id": session_id,
        **asdict(request),
        "status": Status.PENDING.value,
        "tier": tier.value,
        "key": idempotency_key,
        "request_hash": request_hash,
        "now": now,
        "deadline_at_ms": now_ms + timeout_s(tier, settings) * 1000 if tier in RUN_NOW else None,
    }
    if idempotency_key is None:
        row = tx.one(_INSERT + " RETURNING *", params)
    else:
        row = tx.one(
            _INSERT + " ON CONFLICT (session_id, idempotency_key) DO NOTHING RETURNING *", params
        )
        if row is None:
            return idempotency.existing(tx, session_id, idempotency_key, request_hash)
    assert row is not None
    limits = Constraints.from_json(session["constraints"])
    if not admission.reserve(tx, session_id, request.amount, limits, now=now):
        raise RacefreeError(  # the session's counters keep moving under us: ask again shortly
            TransactionCode.EXECUTOR_UNAVAILABLE,
            detail="the session's limits changed while this transaction was admitted",
            retry_after=1,
        )
    txn = Transaction.from_row(row)
    tx.after_commit(functools.partial(metrics.created, txn.tier))
    if tier not in RUN_NOW:
        txn = _queue(tx, txn, settings, now=now, now_ms=now_ms)
        if idempotency_key is not None:
            idempotency.store(tx, txn.id, Reply(202, txn.to_public()))
    audit.record(
        tx,
        "TRANSACTION_CREATED",
        at=now,
        severity=Severity.WARNING if tier is Tier.NOTIFY else Severity.INFO,
        actor="agent",
        agent_id=txn.agent_id,
        session_id=session_id,
        transaction_id=txn.id,
        details={
            "amount": str(request.amount),  # amounts are strings, audit included
            "tier": tier.value,
            "destination": request.destination,
        },
    )
    return txn


def _queue(
    tx: Tx, txn: Transaction, settings: TransactionSettings, *, now: int, now_ms: int
) -> Transaction:
    if txn.tier is Tier.DELAY:
        values = {"execute_after_ms": now_ms + settings.tier_delay_s * 1000}
    else:
        values = {"expires_at_ms": now_ms + settings.tier_approval_ttl_s * 1000}
    result = TRANSACTIONS.transition(
        tx, Move.QUEUE, txn.id, now=now, values=values, audit_context=moves.context(txn, "agent")
    )
    return Transaction.from_row(result.row)
