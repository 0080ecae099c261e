"""The activation cascade and its reversal: set-based statements, no row loops.

They run inside the transition's transaction, after its CAS, so either all of
them commit with the new state and the audit row, or none does. Each returns
the number of rows it changed, for the response and the audit row.

Order matters on PostgreSQL (READ COMMITTED, where each statement sees what
was committed when it started). Each step locks the rows that writers racing
the next step must pass through, so a racer either committed before the lock
(and the next statement sees its work) or waits and then finds the door shut:

1. ``ACTIVE`` agents are suspended. Opening a session first locks its agent
   row under ``status = 'ACTIVE'``, so a session opened concurrently is
   visible to step 2, and later ones are refused;
2. sessions are revoked. Admitting a transaction writes its session row
   under ``revoked_at IS NULL``: likewise for step 3;
3. open transactions are cancelled and their reservations released by *one*
   statement, from the rows it actually cancelled: an executor that claimed a
   row first (``EXECUTING -> SUBMITTED``) keeps both its row and its
   reservation. SQLite runs one writer at a time, so there two plain
   statements are exact.
"""

from __future__ import annotations

from racefree.core.db import Tx

KILL_SWITCH_REASON = "kill_switch"
CANCEL_ERROR = "KILL_SWITCH"

#: Transactions that have not reached the irreversible step yet (DESIGN section 5).
OPEN_STATUSES = "('PENDING', 'QUEUED', 'EXECUTING')"

_CANCEL = (
    "UPDATE transactions SET status = 'CANCELLED', error = :error, updated_at = :now"
    f" WHERE status IN {OPEN_STATUSES}"
)
_RELEASE_OPEN = (
    "UPDATE sessions SET reserved = reserved - ("
    " SELECT COALESCE(SUM(t.amount), 0) FROM transactions t"
    f" WHERE t.session_id = sessions.id AND t.status IN {OPEN_STATUSES})"
    f" WHERE id IN (SELECT session_id FROM transactions WHERE status IN {OPEN_STATUSES})"
)
_LOCK_SESSIONS_OF_OPEN = (
    "SELECT id FROM sessions WHERE id IN (SELECT session_id FROM transactions"
    f" WHERE status IN {OPEN_STATUSES}) ORDER BY id FOR NO KEY UPDATE"
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


def revoke_sessions(tx: Tx, now: int) -> int:
    """Revoke every unrevoked session (after suspending agents: see the module docstring)."""
    return tx.execute(
        "UPDATE sessions SET revoked_at = :now, revoke_reason = :reason WHERE revoked_at IS NULL",
        {"now": now, "reason": KILL_SWITCH_REASON},
    )


def cancel_transactions(tx: Tx, now: int) -> int:
    """Cancel every open transaction and give back what it reserved on its session.

    ``reserved`` holds the amounts of admitted, unfinished transactions; a
    cancelled one will never spend, so its amount comes off.
    """
    params = {"error": CANCEL_ERROR, "now": now}
    if tx.is_sqlite:
        tx.execute(_RELEASE_OPEN)
        return tx.execute(_CANCEL, params)
    # lock the sessions first, in id order: movers (reject, expire, fail) take a session
    # and then its transaction, so the reverse order here could deadlock the activation
    tx.all(_LOCK_SESSIONS_OF_OPEN)
    row = tx.one(_CANCEL_AND_RELEASE, params)
    assert row is not None
    return int(row["cancelled"])


def suspend_agents(tx: Tx, now: int) -> int:
    return tx.execute(
        "UPDATE agents SET status = 'SUSPENDED', suspension_reason = :reason, updated_at = :now"
        " WHERE status = 'ACTIVE'",
        {"reason": KILL_SWITCH_REASON, "now": now},
    )


def reactivate_agents(tx: Tx, now: int) -> int:
    """Undo only what the kill switch did: agents an operator suspended stay suspended."""
    return tx.execute(
        "UPDATE agents SET status = 'ACTIVE', suspension_reason = NULL, updated_at = :now"
        " WHERE status = 'SUSPENDED' AND suspension_reason = :reason",
        {"reason": KILL_SWITCH_REASON, "now": now},
    )
