"""Owner approval, operator rejection and approval expiry: three CASes on ``QUEUED``.

* approve -- ``QUEUED -> EXECUTING`` with the owner's signature over
  ``approve_transaction:<id>`` (which also locks ownership in), only for
  ``APPROVAL`` transactions before ``expires_at_ms``;
* reject -- ``QUEUED -> CANCELLED`` (operator), releasing the reservation;
* expire -- ``QUEUED -> EXPIRED`` once ``expires_at_ms`` has passed (the expiry
  worker), releasing the reservation.

Whichever CAS commits first wins; the others see the new status and get 409
``TX_ALREADY_PROCESSED`` -- or 410 ``TX_EXPIRED`` when expiry won.
"""

from __future__ import annotations

from collections.abc import Callable

from racefree import owners
from racefree.core.condition import Condition
from racefree.core.db import Tx
from racefree.core.errors import MachineCode, RacefreeError
from racefree.core.machine import Transition
from racefree.transactions import moves
from racefree.transactions.errors import TransactionCode
from racefree.transactions.machine import (
    TRANSACTIONS,
    Move,
    Reason,
    Status,
    Tier,
    Transaction,
    load,
)
from racefree.transactions.settings import TransactionSettings
from racefree.transactions.tiers import timeout_s


def _approval(deadline: Condition) -> Condition:
    """An APPROVAL-tier transaction on the given side of its ``expires_at_ms``."""
    return Condition.of("tier = :tier", tier=Tier.APPROVAL.value) & deadline


def approval_action(txn_id: str) -> str:
    """The action an owner signs to approve ``txn_id``."""
    return f"approve_transaction:{txn_id}"


Classifier = Callable[[Tx, Transition], RacefreeError]


def _details(current: Transaction, t: Transition) -> dict[str, object]:
    return {
        "current": current.status.value,
        "requested": t.target,
        "allowed": TRANSACTIONS.targets(current.status),
    }


def _classify_guarded(txn_id: str, *, now: int, expiring: bool) -> Classifier:
    """Why an approve/expire CAS missed: wrong status, wrong tier, or the wrong side of expiry."""

    def classify(tx: Tx, t: Transition) -> RacefreeError:
        current = load(tx, txn_id)
        if current.status is not Status.QUEUED:
            return RacefreeError(t.conflict_for(current.status), details=_details(current, t))
        refusal = moves.agent_refusal(tx, current.agent_id)
        if refusal is not None and not expiring:
            return refusal
        if current.tier is not Tier.APPROVAL:
            return RacefreeError(
                MachineCode.INVALID_STATE_TRANSITION,
                detail=f"a {current.tier} transaction is not waiting for approval",
                details=_details(current, t),
            )
        if expiring:  # QUEUED, APPROVAL, expires_at_ms still ahead
            return RacefreeError(
                MachineCode.INVALID_STATE_TRANSITION,
                detail="the transaction's approval window has not ended",
                details=_details(current, t),
            )
        return RacefreeError(TransactionCode.TX_EXPIRED, details={"transaction_id": txn_id})

    return classify


def approve(
    tx: Tx,
    txn_id: str,
    signature: str | None,
    settings: TransactionSettings,
    *,
    now: int,
    now_ms: int | None = None,
) -> Transaction:
    """``QUEUED -> EXECUTING`` on the owner's word; the caller then runs the execution loop."""
    now_ms = now * 1000 if now_ms is None else now_ms
    txn = load(tx, txn_id)
    proof = owners.verify(tx, signature, action=approval_action(txn_id), now=now)
    # GRACE -> LOCKED (or OWNER_MISMATCH) before the CAS: the kill switch's cascade locks
    # agents before transactions, and so must we on PostgreSQL, or the two could deadlock
    owners.lock_in(tx, txn.agent_id, proof, now=now)
    result = TRANSACTIONS.transition(
        tx,
        Move.APPROVE,
        txn_id,
        now=now,
        values={"deadline_at_ms": now_ms + timeout_s(Tier.APPROVAL, settings) * 1000},
        where=_approval(Condition.of("expires_at_ms > :now", now=now_ms)) & moves.AGENT_ACTIVE,
        classify=_classify_guarded(txn_id, now=now, expiring=False),
        audit_context=moves.context(txn, "owner", public_key=proof.public_key),
    )
    return Transaction.from_row(result.row)


def reject(tx: Tx, txn_id: str, *, now: int, actor: str) -> Transaction:
    """``QUEUED -> CANCELLED`` by an operator."""
    txn = load(tx, txn_id)
    return moves.end(tx, Move.REJECT, txn, now=now, reason=Reason.REJECTED, actor=actor)


def expire(tx: Tx, txn_id: str, *, now: int, now_ms: int | None = None) -> Transaction:
    """``QUEUED -> EXPIRED`` for an APPROVAL transaction whose ``expires_at`` has passed."""
    now_ms = now * 1000 if now_ms is None else now_ms
    txn = load(tx, txn_id)
    return moves.end(
        tx,
        Move.EXPIRE,
        txn,
        now=now,
        reason=Reason.APPROVAL_EXPIRED,
        actor="expiry",
        where=_approval(Condition.of("expires_at_ms <= :now", now=now_ms)),
        classify=_classify_guarded(txn_id, now=now, expiring=True),
    )
