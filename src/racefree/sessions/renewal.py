"""``PUT /v1/sessions/{id}/renew``: rotate the token under optimistic locking.

One statement does the work -- the guards of docs/state-machines.md and the
optimistic lock ``token_hash = :current`` are all in its WHERE, and the
counter is incremented in SQL::

    UPDATE sessions SET token_hash = :new, previous_token_hash = :current,
           expires_at = :now + expires_in, renewal_count = renewal_count + 1,
           last_renewed_at = :now
     WHERE id = :id AND token_hash = :current AND <guards>

Of renewals racing with one token exactly one matches. When none does, one
SELECT in the same transaction says why, in the order of the design: revoked,
expired, agent unavailable, ``RENEWAL_LIMIT_REACHED``,
``SESSION_ABSOLUTE_LIFETIME_EXCEEDED``, ``RENEWAL_TOO_EARLY``; a token that
another renewal just rotated out is ``RENEWAL_CONFLICT`` (or, within the grace
window, the same successor token again; after the reuse window, reuse).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from racefree.agents import availability
from racefree.core import audit, tokens
from racefree.core.db import Database, Row, Tx
from racefree.core.errors import RacefreeError
from racefree.operators.errors import AuthCode
from racefree.sessions import reuse
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import PUBLIC_COLUMNS, SESSION_PREFIX, Policy, Session
from racefree.sessions.successor import derived_successor, grace_key

_RENEW = (
    "UPDATE sessions SET token_hash = :new, previous_token_hash = :current,"
    " expires_at = :now + expires_in, renewal_count = renewal_count + 1, last_renewed_at = :now"
    " WHERE id = :id AND token_hash = :current"
    " AND revoked_at IS NULL AND expires_at > :now"
    " AND renewal_count < max_renewals"
    " AND :now + expires_in <= absolute_expires_at"
    " AND (:now - COALESCE(last_renewed_at, created_at)) * 1000000 >= expires_in * :ppm"
    f" AND {availability.active_exists('sessions.agent_id')}"
    f" RETURNING {PUBLIC_COLUMNS}"
)

_STATE = (
    f"SELECT {PUBLIC_COLUMNS}, token_hash, previous_token_hash,"
    " (SELECT status FROM agents WHERE agents.id = sessions.agent_id) AS agent_status"
    " FROM sessions WHERE id = :id"
)

CONFLICT_HINT = "use the token that the winning request received, or open a new session"

# a rotation is routine (the access line tells of it); a reuse or a revocation is not
audit.routine("SESSION_RENEWED")


@dataclass(frozen=True, slots=True)
class Renewal:
    session: Session
    token: str
    #: True when this answered a repeat within the grace window (no new rotation).
    replayed: bool = False


def renew(
    db: Database,
    session_id: str,
    token: str,
    *,
    now: int,
    policy: Policy,
    actor: str | None = None,
) -> Renewal:
    """Renew ``session_id`` presenting its current ``token``; see the module docstring.

    Owns its transaction because detected reuse must commit the revocation
    and still answer 401 ``TOKEN_REUSED``.
    """
    if not tokens.well_formed(token, SESSION_PREFIX):
        raise RacefreeError(AuthCode.INVALID_TOKEN)
    with db.write() as tx:
        outcome = renew_in(tx, session_id, token, now=now, policy=policy, actor=actor)
    if isinstance(outcome, RacefreeError):
        raise outcome
    return outcome


def renew_in(
    tx: Tx, session_id: str, token: str, *, now: int, policy: Policy, actor: str | None = None
) -> Renewal | RacefreeError:
    """The renewal in ``tx``; returns (not raises) ``TOKEN_REUSED`` so its revocation commits."""
    current = tokens.digest(token)
    key = grace_key(tx, now=now) if policy.grace_s > 0 else None
    new_token = derived_successor(key, session_id, current) if key else tokens.mint(SESSION_PREFIX)
    row = tx.one(
        _RENEW,
        {
            "new": tokens.digest(new_token),
            "current": current,
            "now": now,
            "id": session_id,
            "ppm": policy.min_elapsed_ppm,
        },
    )
    if row is not None:
        reuse.retire(tx, session_id, current, now=now)
        audit.record(
            tx,
            "SESSION_RENEWED",
            at=now,
            actor=actor,
            agent_id=row["agent_id"],
            session_id=session_id,
            details={"renewal_count": row["renewal_count"]},
        )
        return Renewal(Session.from_row(row), new_token)
    state = tx.one(_STATE, {"id": session_id})
    if state is None:
        raise RacefreeError(SessionCode.SESSION_NOT_FOUND, details={"session_id": session_id})
    if hmac.compare_digest(state["token_hash"], current):
        raise guard_error(state, now=now, policy=policy)
    previous = state["previous_token_hash"]
    if previous is not None and hmac.compare_digest(previous, current):
        return _rotated_out(tx, state, current, key, now=now, policy=policy, actor=actor)
    if reuse.is_retired(tx, session_id, current):  # replaced before the last renewal: reuse
        if state["revoked_at"] is not None:
            raise reuse.revoked_error(session_id, state["revoke_reason"])
        return reuse.revoke_for_reuse(tx, session_id, state["agent_id"], current, now=now)
    if tx.scalar("SELECT 1 FROM sessions WHERE token_hash = :h", {"h": current}) is not None:
        raise RacefreeError(
            SessionCode.SESSION_RENEWAL_MISMATCH,
            details={"session_id": session_id},
            hint="renew a session with that session's own token",
        )
    raise RacefreeError(AuthCode.INVALID_TOKEN)


def guard_error(state: Row, *, now: int, policy: Policy) -> RacefreeError:
    """Why the renewal's guards refused a session presented with its current token."""
    details = {"session_id": state["id"]}
    if state["revoked_at"] is not None:
        return RacefreeError(
            SessionCode.SESSION_REVOKED,
            details={**details, "revoke_reason": state["revoke_reason"]},
        )
    if state["expires_at"] <= now:
        return RacefreeError(SessionCode.TOKEN_EXPIRED, details=details)
    unavailable = availability.unavailable(state["agent_status"], state["agent_id"])
    if unavailable is not None:
        return unavailable
    if state["renewal_count"] >= state["max_renewals"]:
        return RacefreeError(
            SessionCode.RENEWAL_LIMIT_REACHED,
            details={**details, "max_renewals": state["max_renewals"]},
            hint="open a new session",
        )
    if now + state["expires_in"] > state["absolute_expires_at"]:
        return RacefreeError(
            SessionCode.SESSION_ABSOLUTE_LIFETIME_EXCEEDED,
            details={**details, "absolute_expires_at": state["absolute_expires_at"]},
            hint="open a new session",
        )
    since = state["last_renewed_at"] or state["created_at"]
    # the smallest whole number of seconds satisfying elapsed * 1e6 >= expires_in * ppm
    required = -(-state["expires_in"] * policy.min_elapsed_ppm // 1_000_000)
    if now - since < required:
        wait = since + required - now
        return RacefreeError(
            SessionCode.RENEWAL_TOO_EARLY,
            retry_after=wait,
            details={**details, "renewable_at": since + required, "retry_after_seconds": wait},
        )
    return RacefreeError(SessionCode.RENEWAL_CONFLICT, details=details, hint=CONFLICT_HINT)


def _rotated_out(
    tx: Tx,
    state: Row,
    current: str,
    key: bytes | None,
    *,
    now: int,
    policy: Policy,
    actor: str | None,
) -> Renewal | RacefreeError:
    """The token was current until a renewal replaced it: replay, conflict, or reuse."""
    session_id = state["id"]
    if state["revoked_at"] is not None:
        raise reuse.revoked_error(session_id, state["revoke_reason"])
    elapsed = now - (state["last_renewed_at"] or now)
    if key is not None and elapsed <= policy.grace_s:
        successor = derived_successor(key, session_id, current)
        if hmac.compare_digest(tokens.digest(successor), state["token_hash"]):
            audit.record(
                tx,
                "SESSION_RENEWAL_REPLAYED",
                at=now,
                actor=actor,
                agent_id=state["agent_id"],
                session_id=session_id,
                details={"renewal_count": state["renewal_count"]},
            )
            return Renewal(Session.from_row(state), successor, replayed=True)
    if reuse.in_window(state["last_renewed_at"], now, policy):
        raise RacefreeError(
            SessionCode.RENEWAL_CONFLICT, details={"session_id": session_id}, hint=CONFLICT_HINT
        )
    return reuse.revoke_for_reuse(tx, session_id, state["agent_id"], current, now=now)
