"""Token reuse: a rotated-out token presented again revokes the session.

A renewal replaces a session's token, keeps the hash of the old one as
``previous_token_hash`` and records it in ``session_retired_tokens`` (in the
renewal's transaction). Seeing *any* retired token again means two parties
hold the session (the client and a thief who renewed, perhaps several times,
or a client replaying stale state), so the session is revoked
(``revoke_reason='token_reuse'``) and audited as critical. One exception:
the token the *last* renewal replaced, within :func:`window` of that renewal,
is a racing renewal that lost or a lost response being retried. A token
replaced before that was never current alongside the newest one: no window.
"""

from __future__ import annotations

import hmac

from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.condition import Condition
from racefree.core.db import Row, Tx
from racefree.core.errors import RacefreeError
from racefree.operators.errors import AuthCode
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import Policy
from racefree.sessions.revocation import by_id, revoke_where

REUSE_REVOKE_REASON = "token_reuse"

_RETIRE = (
    "INSERT INTO session_retired_tokens (token_hash, session_id, retired_at)"
    " VALUES (:h, :session_id, :now)"
)
#: The session a retired token belonged to (one indexed lookup by the token's digest).
SESSION_OF_RETIRED = (
    "SELECT s.id, s.agent_id, s.previous_token_hash, s.last_renewed_at, s.revoked_at,"
    " s.revoke_reason, r.token_hash AS retired_hash FROM session_retired_tokens r"
    " JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = :h"
)


def retire(tx: Tx, session_id: str, token_hash: str, *, now: int) -> None:
    """Remember that a renewal replaced ``token_hash`` (in the renewal's transaction)."""
    tx.execute(_RETIRE, {"h": token_hash, "session_id": session_id, "now": now})


def is_retired(tx: Tx, session_id: str, token_hash: str) -> bool:
    """Whether a renewal of ``session_id`` replaced ``token_hash``."""
    found = tx.scalar(
        "SELECT 1 FROM session_retired_tokens WHERE token_hash = :h AND session_id = :id",
        {"h": token_hash, "id": session_id},
    )
    return found is not None


def forgiven(row: Row, token_hash: str, now: int, policy: Policy) -> bool:
    """Whether a retired token is the last renewal's, presented within its window."""
    previous = row["previous_token_hash"]
    return (
        previous is not None
        and hmac.compare_digest(previous, token_hash)
        and in_window(row["last_renewed_at"], now, policy)
    )


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
        SessionCode.TOKEN_REUSED,
        details={"session_id": session_id},
        hint="the session is revoked; open a new one and keep only the newest token",
    )


def revoked_error(session_id: str, revoke_reason: str | None) -> RacefreeError:
    """What a rotated-out token of a revoked session gets: reuse stays ``TOKEN_REUSED``."""
    if revoke_reason == REUSE_REVOKE_REASON:
        return reuse_error(session_id)
    return RacefreeError(
        SessionCode.SESSION_REVOKED,
        details={"session_id": session_id, "revoke_reason": revoke_reason},
    )


def revoke_for_reuse(
    tx: Tx, session_id: str, agent_id: str, token_hash: str, *, now: int
) -> RacefreeError:
    """Revoke the session whose retired token ``token_hash`` came back; return the 401.

    A CAS on the session being unrevoked and the token being one of its
    retired ones, so it is audited once however many detect it. A token only
    grows older (a renewal meanwhile cannot make reuse innocent again); a
    session revoked meanwhile is classified in the same transaction instead.
    """
    retired_here = Condition.of(
        "EXISTS (SELECT 1 FROM session_retired_tokens r"
        " WHERE r.token_hash = :h AND r.session_id = sessions.id)",
        h=token_hash,
    )
    revoked = revoke_where(
        tx, by_id(session_id) & retired_here, now=now, reason=REUSE_REVOKE_REASON
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
    if row is None or row["revoked_at"] is None:  # not this session's token
        return RacefreeError(AuthCode.INVALID_TOKEN)
    return revoked_error(session_id, row["revoke_reason"])
