"""Deleting expired sessions without ever racing a renewal.

The DELETE is itself guarded: its WHERE is ``expires_at <= :cutoff``, checked
on the row as it is when the DELETE reaches it. A renewal only succeeds on a
session with ``expires_at > now`` and pushes ``expires_at`` forward, so
whichever commits first wins cleanly -- on PostgreSQL a DELETE that waited
for the renewal's row lock re-checks its WHERE against the extended row and
skips it; on SQLite the single writer serializes the two.

Sessions that a transaction references are kept (a hard DELETE would break
the ``transactions.session_id`` foreign key, and the row is that history:
constraints, spent, reserved). They are expired or revoked, so nothing can
use them; only sessions no transaction points at are removed.
"""

from __future__ import annotations

from racefree.core import audit
from racefree.core.db import Tx

_DELETE_EXPIRED = (
    "DELETE FROM sessions WHERE expires_at <= :cutoff"
    " AND NOT EXISTS (SELECT 1 FROM transactions WHERE transactions.session_id = sessions.id)"
)


def cleanup_expired(tx: Tx, *, now: int, retention_s: int = 0, actor: str | None = None) -> int:
    """Delete sessions expired for at least ``retention_s`` seconds; return how many."""
    deleted = tx.execute(_DELETE_EXPIRED, {"cutoff": now - retention_s})
    if deleted:
        audit.record(
            tx,
            "SESSIONS_CLEANED_UP",
            at=now,
            actor=actor,
            details={"deleted": deleted, "retention_s": retention_s},
        )
    return deleted
