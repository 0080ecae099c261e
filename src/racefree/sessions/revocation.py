"""Revoking sessions: the one home of the revocation UPDATE.

Every revocation -- an operator's, token reuse, an agent's termination, the
kill switch -- is :func:`revoke_where`: a CAS on ``revoked_at IS NULL`` plus
the caller's condition, so a session is revoked (and counted) once however
many paths race to revoke it.
"""

from __future__ import annotations

from racefree.core.condition import Condition
from racefree.core.db import Row, Tx

_REVOKE = (
    "UPDATE sessions SET revoked_at = :now, revoke_reason = :reason"
    " WHERE revoked_at IS NULL AND ({where})"
)


def revoke_where(tx: Tx, where: Condition, *, now: int, reason: str) -> int:
    """Revoke every unrevoked session matching ``where``; the number revoked."""
    return tx.execute(_REVOKE.format(where=where.sql), where.bind({"now": now, "reason": reason}))


def revoke_one(tx: Tx, where: Condition, *, now: int, reason: str, returning: str) -> Row | None:
    """Revoke the one session ``where`` names; its ``returning`` columns, None when none matched."""
    return tx.one(
        _REVOKE.format(where=where.sql) + f" RETURNING {returning}",
        where.bind({"now": now, "reason": reason}),
    )


def of_agent(agent_id: str) -> Condition:
    return Condition.of("agent_id = :agent_id", agent_id=agent_id)


def by_id(session_id: str) -> Condition:
    return Condition.of("id = :id", id=session_id)
