"""The activation cascade and its reversal: set-based statements, no row loops.

They run inside the transition's transaction, after its CAS, so either all of
them commit with the new state and the audit row, or none does. Each returns
the number of rows it changed, for the response and the audit row.
"""

from __future__ import annotations

from racefree.core.db import Tx

KILL_SWITCH_REASON = "kill_switch"
CANCEL_ERROR = "KILL_SWITCH"

#: Transactions that have not reached the irreversible step yet (DESIGN section 5).
OPEN_STATUSES = "('PENDING', 'QUEUED', 'EXECUTING')"


# What the open transactions of the session being updated reserved on it.
_OPEN_SESSIONS = f"(SELECT session_id FROM transactions WHERE status IN {OPEN_STATUSES})"
_OPEN_RESERVED = (
    "(SELECT COALESCE(SUM(t.amount), 0) FROM transactions t"
    f" WHERE t.session_id = sessions.id AND t.status IN {OPEN_STATUSES})"
)


def revoke_sessions(tx: Tx, now: int) -> int:
    """Revoke every unrevoked session and release what its open transactions reserved.

    ``reserved`` holds the amounts of admitted, unfinished transactions; the
    ones about to be cancelled will never spend, so their sum comes off --
    before they are cancelled, while their status still says which are open.
    Each session row is written once: a second UPDATE of a row this
    transaction already changed costs PostgreSQL a foreign-key re-check per
    row (``bench/killswitch.py``). Sessions revoked earlier that still have
    open transactions are released first. Returns the sessions revoked.
    """
    tx.execute(
        f"UPDATE sessions SET reserved = reserved - {_OPEN_RESERVED}"
        f" WHERE revoked_at IS NOT NULL AND id IN {_OPEN_SESSIONS}"
    )
    return tx.execute(
        "UPDATE sessions SET revoked_at = :now, revoke_reason = :reason,"
        f" reserved = CASE WHEN id IN {_OPEN_SESSIONS}"
        f" THEN reserved - {_OPEN_RESERVED} ELSE reserved END"
        " WHERE revoked_at IS NULL",
        {"now": now, "reason": KILL_SWITCH_REASON},
    )


def cancel_transactions(tx: Tx, now: int) -> int:
    return tx.execute(
        "UPDATE transactions SET status = 'CANCELLED', error = :error, updated_at = :now"
        f" WHERE status IN {OPEN_STATUSES}",
        {"error": CANCEL_ERROR, "now": now},
    )


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
