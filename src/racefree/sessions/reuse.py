"""Token reuse: a rotated-out token presented after its window revokes the session.

A renewal replaces a session's token and keeps the hash of the old one
(``previous_token_hash``). Seeing that old token again means two parties hold
the session (the client and a thief, or a client replaying stale state), so
the session is revoked (``revoke_reason='token_reuse'``) and audited as
critical -- unless it comes within :func:`window` of the renewal, where it is
a racing renewal that lost, or a lost response being retried.
"""

from __future__ import annotations

from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.condition import Condition
from racefree.core.db import Tx
from racefree.core.errors import ErrorCode, RacefreeError
from racefree.sessions.model import Policy
from racefree.sessions.revocation import by_id, revoke_where

REUSE_REVOKE_REASON = "token_reuse"
#: How long after a renewal its previous token counts as a lost race, not as reuse.
#: Renewals released together finish within this even when the clock ticks meanwhile.
CONFLICT_WINDOW_S = 5


def window(policy: Policy) -> int:
    """Seconds after a renewal during which its previous token is not yet reuse."""
    return max(policy.grace_s, CONFLICT_WINDOW_S)


def in_window(last_renewed_at: int | None, now: int, policy: Policy) -> bool:
    return last_renewed_at is not None and now - last_renewed_at <= window(policy)


def reuse_error(session_id: str) -> RacefreeError:
    """401 ``TOKEN_REUSED``: also the answer for every later use of a token that caused it."""
    return RacefreeError(
        ErrorCode.TOKEN_REUSED,
        details={"session_id": session_id},
        hint="the session is revoked; open a new one and keep only the newest token",
    )


def revoked_error(session_id: str, revoke_reason: str | None) -> RacefreeError:
    """What a rotated-out token of a revoked session gets: reuse stays ``TOKEN_REUSED``."""
    if revoke_reason == REUSE_REVOKE_REASON:
        return reuse_error(session_id)
    return RacefreeError(
        ErrorCode.SESSION_REVOKED,
        details={"session_id": session_id, "revoke_reason": revoke_reason},
    )


def revoke_for_reuse(
    tx: Tx, session_id: str, agent_id: str, token_hash: str, *, now: int
) -> RacefreeError:
    """Revoke the session whose rotated-out token ``token_hash`` came back; return the 401.

    A CAS on the condition that decided it (``previous_token_hash``), so it is
    audited once however many detect it, and a session revoked or renewed
    again meanwhile is classified in the same transaction instead.
    """
    still_previous = Condition.of("previous_token_hash = :h", h=token_hash)
    revoked = revoke_where(
        tx, by_id(session_id) & still_previous, now=now, reason=REUSE_REVOKE_REASON
    )
    if revoked:
        audit.record(
            tx,
            "SESSION_TOKEN_REUSED",
            at=now,
            severity=Severity.CRITICAL,
            agent_id=agent_id,
            session_id=session_id,
            details={"revoke_reason": REUSE_REVOKE_REASON},
        )
        return reuse_error(session_id)
    row = tx.one(
        "SELECT revoked_at, revoke_reason FROM sessions WHERE id = :id", {"id": session_id}
    )
    if row is None or row["revoked_at"] is None:  # renewed again: the token is two rotations old
        return RacefreeError(ErrorCode.INVALID_TOKEN)
    return revoked_error(session_id, row["revoke_reason"])
