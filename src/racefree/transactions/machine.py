"""The transaction status machine (docs/state-machines.md) and the transaction record.

::

    PENDING -> QUEUED | EXECUTING | FAILED | CANCELLED
    QUEUED -> EXECUTING | CANCELLED | EXPIRED
    EXECUTING -> SUBMITTED | FAILED | CANCELLED
    SUBMITTED -> CONFIRMED | FAILED

Every move is a CAS on the expected status (:class:`~racefree.core.machine.StateMachine`).
The executor claims ``EXECUTING -> SUBMITTED`` *before* the irreversible step,
so a kill switch that cancelled the row first always wins. Moves into a
terminal state release or settle the session's reservation in the same
transaction (:mod:`racefree.sessions.admission`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.clock import isoformat
from racefree.core.db import Row, Tx
from racefree.core.errors import Code, MachineCode, RacefreeError
from racefree.core.machine import StateMachine, move
from racefree.transactions import metrics
from racefree.transactions.errors import TransactionCode


class Status(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    SUBMITTED = "SUBMITTED"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class Move(StrEnum):
    """The transaction machine's transition names."""

    QUEUE = "queue"
    CLAIM = "claim"
    APPROVE = "approve"
    SUBMIT = "submit"
    CONFIRM = "confirm"
    FAIL = "fail"
    CANCEL = "cancel"
    REJECT = "reject"
    EXPIRE = "expire"


class Tier(StrEnum):
    INSTANT = "INSTANT"
    NOTIFY = "NOTIFY"
    DELAY = "DELAY"
    APPROVAL = "APPROVAL"


class Reason(StrEnum):
    """Why a transaction ended other than CONFIRMED (the ``error`` column), beyond catalog codes."""

    KILL_SWITCH = "KILL_SWITCH"
    REJECTED = "REJECTED"
    APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
    EXECUTION_TIMEOUT = "EXECUTION_TIMEOUT"
    NOT_CONFIRMED = "NOT_CONFIRMED"
    AGENT_TERMINATED = "AGENT_TERMINATED"


#: Statuses whose amount is held in ``sessions.reserved``.
UNFINISHED = (Status.PENDING, Status.QUEUED, Status.EXECUTING, Status.SUBMITTED)
TERMINAL = (Status.CONFIRMED, Status.FAILED, Status.CANCELLED, Status.EXPIRED)

_S = Status
_PROCESSED = TransactionCode.TX_ALREADY_PROCESSED
_ILLEGAL = MachineCode.INVALID_STATE_TRANSITION
_OWNER_DECISION_CONFLICTS: dict[str, Code] = {
    _S.EXPIRED: TransactionCode.TX_EXPIRED,
    _S.PENDING: _ILLEGAL,
}

TRANSACTIONS = StateMachine(
    "transaction",
    table="transactions",
    key_column="id",
    state_column="status",
    states=tuple(Status),
    initial=Status.PENDING,
    not_found=TransactionCode.TX_NOT_FOUND,
    on_commit=metrics.moved,
    transitions=(
        move(
            Move.QUEUE, _S.PENDING, _S.QUEUED, conflict=_ILLEGAL, audit_event="TRANSACTION_QUEUED"
        ),
        move(
            Move.CLAIM,
            (_S.PENDING, _S.QUEUED),
            _S.EXECUTING,
            conflict=_PROCESSED,
            conflict_by_state={_S.EXPIRED.value: TransactionCode.TX_EXPIRED},
            audit_event="TRANSACTION_CLAIMED",
        ),
        move(
            Move.APPROVE,
            _S.QUEUED,
            _S.EXECUTING,
            conflict=_PROCESSED,
            conflict_by_state=_OWNER_DECISION_CONFLICTS,
            audit_event="TRANSACTION_APPROVED",
        ),
        move(
            Move.SUBMIT,
            _S.EXECUTING,
            _S.SUBMITTED,
            conflict=_ILLEGAL,
            audit_event="TRANSACTION_SUBMITTED",
        ),
        move(
            Move.CONFIRM,
            _S.SUBMITTED,
            _S.CONFIRMED,
            conflict=_ILLEGAL,
            audit_event="TRANSACTION_CONFIRMED",
        ),
        move(
            Move.FAIL,
            (_S.PENDING, _S.EXECUTING, _S.SUBMITTED),
            _S.FAILED,
            conflict=_ILLEGAL,
            audit_event="TRANSACTION_FAILED",
            severity=Severity.WARNING,
        ),
        # applied set-based by transactions.cancellation.cancel_open (the kill switch
        # cascade, an agent's termination)
        move(
            Move.CANCEL,
            (_S.PENDING, _S.QUEUED, _S.EXECUTING),
            _S.CANCELLED,
            conflict=_ILLEGAL,
            audit_event="TRANSACTION_CANCELLED",
            severity=Severity.WARNING,
        ),
        move(
            Move.REJECT,
            _S.QUEUED,
            _S.CANCELLED,
            conflict=_PROCESSED,
            conflict_by_state=_OWNER_DECISION_CONFLICTS,
            audit_event="TRANSACTION_REJECTED",
        ),
        move(
            Move.EXPIRE,
            _S.QUEUED,
            _S.EXPIRED,
            conflict=_PROCESSED,
            conflict_by_state={_S.PENDING.value: _ILLEGAL},
            audit_event="TRANSACTION_EXPIRED",
        ),
    ),
)

# A payment's way through, logged at DEBUG: the access line tells of the request, and
# a failure, a refusal or an operator's decision still logs at its severity.
audit.routine(
    "TRANSACTION_CREATED", "TRANSACTION_CLAIMED", "TRANSACTION_SUBMITTED", "TRANSACTION_CONFIRMED"
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One row of ``transactions``, as the domain sees it."""

    id: str
    agent_id: str
    session_id: str
    type: str
    amount: int
    destination: str
    status: Status
    tier: Tier
    error: str | None
    attempts: int
    idempotency_key: str | None
    execute_after_ms: int | None
    expires_at_ms: int | None
    deadline_at_ms: int | None
    reference: str | None
    created_at: int
    updated_at: int
    submitted_at: int | None
    confirmed_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> Transaction:
        return cls(
            id=row["id"],
            agent_id=row["agent_id"],
            session_id=row["session_id"],
            type=row["type"],
            amount=int(row["amount"]),
            destination=row["destination"],
            status=Status(row["status"]),
            tier=Tier(row["tier"]),
            error=row["error"],
            attempts=row["attempts"],
            idempotency_key=row["idempotency_key"],
            execute_after_ms=row["execute_after_ms"],
            expires_at_ms=row["expires_at_ms"],
            deadline_at_ms=row["deadline_at_ms"],
            reference=row["reference"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            submitted_at=row["submitted_at"],
            confirmed_at=row["confirmed_at"],
        )

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def to_public(self) -> dict[str, Any]:
        """The transaction object of the HTTP API (amounts as strings of minor units)."""
        return {
            "transaction_id": self.id,
            "agent_id": self.agent_id,
            "session_id": self.session_id,
            "type": self.type,
            "amount": str(self.amount),
            "destination": self.destination,
            "status": self.status.value,
            "tier": self.tier.value,
            "error": self.error,
            "attempts": self.attempts,
            "execute_after": _iso(self.execute_after_ms),
            "expires_at": _iso(self.expires_at_ms),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "submitted_at": isoformat(self.submitted_at),
            "confirmed_at": isoformat(self.confirmed_at),
        }


def load(tx: Tx, txn_id: str) -> Transaction:
    """The transaction ``txn_id``, or 404 ``TX_NOT_FOUND``: the one loader."""
    row = tx.one("SELECT * FROM transactions WHERE id = :id", {"id": txn_id})
    if row is None:
        raise RacefreeError(TransactionCode.TX_NOT_FOUND)
    return Transaction.from_row(row)


def _iso(epoch_ms: int | None) -> str | None:
    """A millisecond deadline as the API's ISO-8601 second (its second, not rounded up)."""
    return None if epoch_ms is None else isoformat(epoch_ms // 1000)
