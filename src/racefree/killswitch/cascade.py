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


def release_reservations(tx: Tx, now: int) -> int:
    """Give back what open transactions reserved on their sessions (before cancelling them).

    ``reserved`` holds the amounts of admitted, unfinished transactions; the
    ones about to be cancelled will never spend, so their sum comes off.
    """
    return tx.execute(
        "UPDATE sessions SET reserved = reserved - ("
        "  SELECT COALESCE(SUM(t.amount), 0) FROM transactions t"
        f"  WHERE t.session_id = sessions.id AND t.status IN {OPEN_STATUSES})"
        " WHERE id IN (SELECT session_id FROM transactions"
        f"  WHERE status IN {OPEN_STATUSES})"
    )


def cancel_transactions(tx: Tx, now: int) -> int:
    return tx.execute(
        "UPDATE transactions SET status = 'CANCELLED', error = :error, updated_at = :now"
        f" WHERE status IN {OPEN_STATUSES}",
        {"error": CANCEL_ERROR, "now": now},
    )


def revoke_sessions(tx: Tx, now: int) -> int:
    return tx.execute(
        "UPDATE sessions SET revoked_at = :now, revoke_reason = :reason"
        " WHERE revoked_at IS NULL",
        {"now": now, "reason": KILL_SWITCH_REASON},
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
