"""Cancel-open: the set-based ``cancel`` move of :data:`TRANSACTIONS` and its release.

The kill switch cancels every transaction that has not reached the irreversible
step yet -- the sources of the machine's ``cancel`` transition -- and gives back
what each reserved on its session, in the same transaction. An executor that
claimed a row first (``EXECUTING -> SUBMITTED``) keeps both its row and its
reservation, because the release is computed from the rows actually cancelled.

Lock order (PostgreSQL): the sessions of open transactions first, in id order,
then the transactions -- the order movers (reject, expire, fail) take them in,
so the two can never deadlock. SQLite runs one writer at a time, so there two
plain statements are exact.
"""

from __future__ import annotations

from racefree.core.db import Tx
from racefree.transactions.machine import TRANSACTIONS, Move

#: Statuses the ``cancel`` transition leaves (docs/state-machines.md): the open ones.
OPEN = TRANSACTIONS.transitions[Move.CANCEL].sources
_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN) + ")"
_TARGET = TRANSACTIONS.transitions[Move.CANCEL].target

_CANCEL = (
    f"UPDATE transactions SET status = '{_TARGET}', error = :error, updated_at = :now"
    f" WHERE status IN {_OPEN_SQL}"
)
_RELEASE_OPEN = (
    "UPDATE sessions SET reserved = reserved - ("
    " SELECT COALESCE(SUM(t.amount), 0) FROM transactions t"
    f" WHERE t.session_id = sessions.id AND t.status IN {_OPEN_SQL})"
    f" WHERE id IN (SELECT session_id FROM transactions WHERE status IN {_OPEN_SQL})"
)
_LOCK_SESSIONS_OF_OPEN = (
    "SELECT id FROM sessions WHERE id IN (SELECT session_id FROM transactions"
    f" WHERE status IN {_OPEN_SQL}) ORDER BY id FOR NO KEY UPDATE"
)
_CANCEL_AND_RELEASE = (
    f"WITH cancelled AS ({_CANCEL} RETURNING session_id, amount),"
    " released AS ("
    "  UPDATE sessions SET reserved = sessions.reserved - c.total"
    "  FROM (SELECT session_id, SUM(amount) AS total FROM cancelled GROUP BY session_id) AS c"
    "  WHERE sessions.id = c.session_id RETURNING sessions.id)"
    " SELECT (SELECT COUNT(*) FROM cancelled) AS cancelled,"
    " (SELECT COUNT(*) FROM released) AS released"
)


def cancel_open(tx: Tx, *, error: str, now: int) -> int:
    """Cancel every open transaction with ``error``, releasing its reservation; how many."""
    params = {"error": error, "now": now}
    if tx.is_sqlite:
        tx.execute(_RELEASE_OPEN)
        return tx.execute(_CANCEL, params)
    tx.all(_LOCK_SESSIONS_OF_OPEN)
    row = tx.one(_CANCEL_AND_RELEASE, params)
    assert row is not None
    return int(row["cancelled"])
