"""Spending counters on the session row, written for the transactions domain.

``reserved`` sums the amounts of admitted unfinished transactions and
``spent`` the confirmed ones (see :mod:`racefree.sessions`). A transaction
that ends gives its amount back (:func:`release`) or moves it to ``spent``
(:func:`settle`); the kill switch's cancellation gives back, per session, the
sum of the rows it actually cancelled (:func:`release_sums`), so an executor
that claimed a row first keeps its reservation.

Lock order (PostgreSQL): a session row before the transactions that reserve on
it, and several sessions in id order (:func:`lock`). A mover (reject, expire,
fail) locks its one session, then its transaction; the cancellation locks the
sessions of the open transactions in id order, then cancels them -- so no two
writers can wait on each other in a cycle. SQLite runs one writer at a time:
there :func:`lock` does nothing and plain statements are exact.
"""

from __future__ import annotations

from racefree.core.condition import Condition
from racefree.core.db import Tx


def lock(tx: Tx, which: Condition) -> None:
    """Lock the sessions ``which`` selects, in id order, before their transactions
    (PostgreSQL; a no-op on SQLite)."""
    if not tx.is_sqlite:
        tx.execute(
            f"SELECT id FROM sessions WHERE {which.sql} ORDER BY id FOR NO KEY UPDATE",
            which.params,
        )


def release(tx: Tx, session_id: str, amount: int) -> int:
    """Give a finished transaction's ``amount`` back to its session."""
    return tx.execute(
        "UPDATE sessions SET reserved = reserved - :amount WHERE id = :session_id",
        {"amount": amount, "session_id": session_id},
    )


def settle(tx: Tx, session_id: str, amount: int) -> int:
    """Move a confirmed transaction's ``amount`` from ``reserved`` to ``spent``."""
    return tx.execute(
        "UPDATE sessions SET reserved = reserved - :amount, spent = spent + :amount"
        " WHERE id = :session_id",
        {"amount": amount, "session_id": session_id},
    )


def release_sums(rows: str) -> str:
    """The UPDATE that gives back, per session, the sum of ``rows`` (a SELECT of
    ``session_id, amount``): a statement of its own, or on PostgreSQL a data-modifying
    CTE whose ``rows`` read another one (``SELECT session_id, amount FROM cancelled``),
    so the release is made from the rows that statement actually changed."""
    return (
        "UPDATE sessions SET reserved = sessions.reserved - released.total"
        " FROM (SELECT r.session_id, SUM(r.amount) AS total"
        f" FROM ({rows}) AS r GROUP BY r.session_id) AS released"
        " WHERE sessions.id = released.session_id"
    )
