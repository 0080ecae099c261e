"""Admission on the session row: check-and-reserve as one conditional UPDATE.

A session's ``constraints`` (JSON, fixed at creation) may cap the amount of one
transaction (``max_amount_per_tx``), the total of its transactions
(``max_total_amount``) and their number (``max_transactions``). Admission is
the CAS on the session row::

    UPDATE sessions SET reserved = reserved + :amount, tx_count = tx_count + 1
     WHERE id = :id AND <session active> AND <agent active>
       AND spent + reserved + :amount <= :max_total AND tx_count < :max_tx ...

so the limit check *is* the write: concurrent submissions queue on the row and
each re-checks the WHERE against the winner's committed counters, and none can
overshoot. The limits are read from the JSON in Python and bound as
parameters; only present limits appear in the WHERE.

Bookkeeping: ``tx_count`` counts admitted transactions and never goes down;
``reserved`` is the sum of admitted unfinished amounts; ``spent`` the sum of
confirmed ones. CONFIRMED moves an amount from ``reserved`` to ``spent``;
FAILED, CANCELLED and EXPIRED release it. Each transaction reaches a terminal
status by exactly one CAS, so each reservation is settled exactly once.
"""

from __future__ import annotations

from typing import Any

from racefree.agents import availability
from racefree.core import amounts
from racefree.core.db import Row, Tx
from racefree.core.errors import RacefreeError
from racefree.sessions import spending
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import Constraints

_ACTIVE_AGENT = availability.active_exists("sessions.agent_id")


def admits(limits: Constraints) -> list[str]:
    """The admission's conditions on the session row ``:session_id`` for ``:amount`` at
    ``:now`` (parameters: :func:`limit_params`); only present limits appear."""
    where = [
        "id = :session_id",
        "revoked_at IS NULL",
        "expires_at > :now",
        _ACTIVE_AGENT,
    ]
    if limits.max_amount_per_tx is not None:
        where.append(":amount <= :max_amount_per_tx")
    if limits.max_transactions is not None:
        where.append("tx_count < :max_transactions")
    if limits.max_total_amount is not None:
        where.append("spent + reserved + :amount <= :max_total_amount")
    where.append("spent + reserved + :amount <= :max_kept")  # no kept sum can overflow
    return where


def limit_params(limits: Constraints) -> dict[str, int | None]:
    return {
        "max_amount_per_tx": limits.max_amount_per_tx,
        "max_transactions": limits.max_transactions,
        "max_total_amount": limits.max_total_amount,
        "max_kept": amounts.MAX_KEPT,
    }


#: The admission's write: the amount reserved until the transaction ends.
RESERVE = "UPDATE sessions SET reserved = reserved + :amount, tx_count = tx_count + 1"
#: The admission's write when the transaction is confirmed in the same commit
#: (the ledger's one-commit payment): reserved and settled at once.
CHARGE = "UPDATE sessions SET spent = spent + :amount, tx_count = tx_count + 1"


def _admission_sql(limits: Constraints) -> str:
    return f"{RESERVE} WHERE {' AND '.join(admits(limits))} RETURNING id"


#: A refusal whose explanation is gone is retried this many times before answering 503.
ADMISSION_RETRIES = 1


def reserve(tx: Tx, session_id: str, amount: int, limits: Constraints, *, now: int) -> bool:
    """Admit ``amount`` against the session's limits, or raise why not (one SELECT);
    False when the session's counters kept moving under every try (ask again shortly).

    On PostgreSQL (READ COMMITTED) a release can commit between a refused
    admission and the SELECT that explains it, which then finds no failing
    limit: the admission is tried again (it may now pass) instead of guessing.
    """
    params = {"session_id": session_id, "amount": amount, "now": now, **limit_params(limits)}
    for _ in range(1 + ADMISSION_RETRIES):
        if tx.one(_admission_sql(limits), params) is not None:
            return True
        refusal = _refusal(tx, session_id, amount, limits, now=now)
        if refusal is not None:
            raise refusal
    return False


def _refusal(
    tx: Tx, session_id: str, amount: int, limits: Constraints, *, now: int
) -> RacefreeError | None:
    """Why the admission was refused; None when nothing refuses it now (it changed meanwhile)."""
    row = tx.one(
        "SELECT s.revoked_at, s.expires_at, s.spent, s.reserved, s.tx_count, a.status"
        " FROM sessions s JOIN agents a ON a.id = s.agent_id WHERE s.id = :id",
        {"id": session_id},
    )
    if row is None:
        return RacefreeError(SessionCode.SESSION_NOT_FOUND)
    if row["revoked_at"] is not None:
        return RacefreeError(SessionCode.SESSION_REVOKED)
    if row["expires_at"] <= now:
        return RacefreeError(SessionCode.TOKEN_EXPIRED)
    unavailable = availability.unavailable(row["status"])
    if unavailable is not None:
        return unavailable
    return _limit_exceeded(row, amount, limits)


def _limit_exceeded(row: Row, amount: int, limits: Constraints) -> RacefreeError | None:
    committed = int(row["spent"]) + int(row["reserved"])
    if limits.max_amount_per_tx is not None and amount > limits.max_amount_per_tx:
        name, limit, current = "max_amount_per_tx", limits.max_amount_per_tx, amount
    elif limits.max_transactions is not None and row["tx_count"] >= limits.max_transactions:
        name, limit, current = "max_transactions", limits.max_transactions, row["tx_count"]
    elif limits.max_total_amount is not None and committed + amount > limits.max_total_amount:
        name, limit, current = "max_total_amount", limits.max_total_amount, committed
    elif committed + amount > amounts.MAX_KEPT:
        name, limit, current = "max_kept_total", amounts.MAX_KEPT, committed
    else:  # a release committed after the refused UPDATE: nothing refuses it any more
        return None
    return RacefreeError(
        SessionCode.SESSION_LIMIT_EXCEEDED,
        detail=f"the session's {name} ({limit}) does not admit this transaction",
        details=_limit_details(name, limit, current, amount),
    )


def _limit_details(name: str, limit: int, current: int, requested: int) -> dict[str, Any]:
    """Amounts as strings: the requested amount always, the limit and the current
    figure unless they count transactions (``max_transactions``)."""
    if name == "max_transactions":
        return {"limit": name, "max": limit, "current": current, "requested": str(requested)}
    return {"limit": name, "max": str(limit), "current": str(current), "requested": str(requested)}


def release(tx: Tx, row: Row) -> int:
    """Give a finished transaction's amount back to its session (FAILED/CANCELLED/EXPIRED)."""
    return spending.release(tx, row["session_id"], row["amount"])


def settle(tx: Tx, row: Row) -> int:
    """Move a confirmed transaction's amount from ``reserved`` to ``spent``."""
    return spending.settle(tx, row["session_id"], row["amount"])
