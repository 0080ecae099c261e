"""Opening, reading and revoking sessions."""

from __future__ import annotations

from racefree.agents import availability
from racefree.core import audit, tokens
from racefree.core.audit import Severity
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError, invalid_field
from racefree.core.ids import new_id
from racefree.sessions import revocation
from racefree.sessions.errors import SessionCode
from racefree.sessions.machine import REVOKED, SESSIONS, Move
from racefree.sessions.model import (
    PUBLIC_COLUMNS,
    SESSION_PREFIX,
    Constraints,
    IssuedToken,
    Policy,
    Session,
)

OPERATOR_REVOKE_REASON = "operator"


def issue(
    tx: Tx,
    agent_id: str,
    *,
    now: int,
    policy: Policy,
    expires_in: int | None = None,
    max_renewals: int | None = None,
    constraints: Constraints | None = None,
    actor: str | None = None,
) -> IssuedToken:
    """Open a session for an ACTIVE agent and return it with its token (shown once).

    The first write is a no-op CAS on the agent row (``status = 'ACTIVE'``):
    it refuses suspended/terminated agents and, on PostgreSQL, holds the row
    lock so a concurrent suspension commits either before (refused here) or
    after this session exists (and then revokes or disables it).
    """
    expires_in = policy.expires_in if expires_in is None else expires_in
    max_renewals = policy.max_renewals if max_renewals is None else max_renewals
    if not 0 < expires_in <= policy.absolute_lifetime:
        raise invalid_field("expires_in", f"between 1 and {policy.absolute_lifetime} seconds")
    if max_renewals < 0:
        raise invalid_field("max_renewals", "a non-negative integer")
    availability.lock_active(tx, agent_id)
    token = tokens.mint(SESSION_PREFIX)
    session_id = new_id()
    absolute = now + policy.absolute_lifetime
    tx.execute(
        "INSERT INTO sessions (id, agent_id, token_hash, expires_at, expires_in, renewal_count,"
        " max_renewals, absolute_expires_at, constraints, created_at) VALUES (:id, :agent_id,"
        " :token_hash, :expires_at, :expires_in, 0, :max_renewals, :absolute, :constraints, :now)",
        {
            "id": session_id,
            "agent_id": agent_id,
            "token_hash": tokens.digest(token),
            "expires_at": min(now + expires_in, absolute),
            "expires_in": expires_in,
            "max_renewals": max_renewals,
            "absolute": absolute,
            "constraints": (constraints or Constraints()).to_json(),
            "now": now,
        },
    )
    audit.record(
        tx,
        "SESSION_CREATED",
        at=now,
        actor=actor,
        agent_id=agent_id,
        session_id=session_id,
        details={"expires_in": expires_in, "max_renewals": max_renewals},
    )
    return IssuedToken(get(tx, session_id), token)


def get(tx: Tx, session_id: str) -> Session:
    """The session ``session_id``, or 404 ``SESSION_NOT_FOUND``."""
    row = tx.one(f"SELECT {PUBLIC_COLUMNS} FROM sessions WHERE id = :id", {"id": session_id})
    if row is None:
        raise RacefreeError(SessionCode.SESSION_NOT_FOUND, details={"session_id": session_id})
    return Session.from_row(row)


#: SQL condition: the session is active at ``:now``: not revoked, not expired.
ACTIVE = "revoked_at IS NULL AND expires_at > :now"


def count_active(tx: Tx, *, now: int) -> int:
    """How many sessions are active at ``now``."""
    return int(tx.scalar(f"SELECT COUNT(*) FROM sessions WHERE {ACTIVE}", {"now": now}))


def list_sessions(
    tx: Tx,
    *,
    now: int,
    agent_id: str | None = None,
    active_only: bool = False,
    after_id: str | None = None,
    limit: int = 100,
) -> list[Session]:
    """Sessions in creation (id) order after ``after_id``; optionally one agent's or active ones."""
    sql = f"SELECT {PUBLIC_COLUMNS} FROM sessions WHERE id > :after"
    if agent_id is not None:
        sql += " AND agent_id = :agent_id"
    if active_only:
        sql += f" AND {ACTIVE}"
    rows = tx.all(
        sql + " ORDER BY id LIMIT :limit",
        {"after": after_id or "", "agent_id": agent_id, "now": now, "limit": limit},
    )
    return [Session.from_row(r) for r in rows]


def revoke(
    tx: Tx,
    session_id: str,
    *,
    now: int,
    reason: str = OPERATOR_REVOKE_REASON,
    actor: str | None = None,
    severity: Severity = Severity.WARNING,
) -> Session:
    """Revoke the session: a CAS on ``revoked_at IS NULL``; 404 or 409 for the loser."""

    def classify(inner: Tx) -> RacefreeError:
        row = inner.one(
            "SELECT revoked_at, revoke_reason FROM sessions WHERE id = :id", {"id": session_id}
        )
        if row is None:
            return RacefreeError(SessionCode.SESSION_NOT_FOUND, details={"session_id": session_id})
        return RacefreeError(
            SESSIONS.transitions[Move.REVOKE].conflict_for(REVOKED),
            details={
                "session_id": session_id,
                "revoked_at": row["revoked_at"],
                "revoke_reason": row["revoke_reason"],
            },
        )

    row = revocation.revoke_one(
        tx, revocation.by_id(session_id), now=now, reason=reason, returning=PUBLIC_COLUMNS
    )
    if row is None:
        raise classify(tx)
    audit.record(
        tx,
        "SESSION_REVOKED",
        at=now,
        severity=severity,
        actor=actor,
        agent_id=row["agent_id"],
        session_id=session_id,
        details={"reason": reason},
    )
    return Session.from_row(row)
