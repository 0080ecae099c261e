"""Who holds this session token: one indexed lookup by the token's SHA-256.

A malformed token (prefix, length, alphabet, checksum) is refused before any
database work. A rotated-out token is told apart: the last renewal's, within
the reuse window, is merely invalid; any other revokes the session (see
:mod:`.reuse`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from racefree.agents import availability
from racefree.core import tokens
from racefree.core.db import Database, Row
from racefree.core.errors import RacefreeError
from racefree.operators.errors import AuthCode
from racefree.sessions import reuse
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import SESSION_PREFIX, Policy

_SESSION_OF_DIGEST = (
    "SELECT s.id, s.agent_id, s.token_hash, s.expires_at, s.revoked_at, s.revoke_reason,"
    " a.status AS agent_status FROM sessions s JOIN agents a ON a.id = s.agent_id"
    " WHERE s.token_hash = :h"
)


def lookup(token: str) -> tuple[str, dict[str, str]] | None:
    """The read :func:`authenticate` makes first for ``token`` (None: it makes none), for
    a caller that reads it together with others."""
    if not tokens.well_formed(token, SESSION_PREFIX):
        return None
    return _SESSION_OF_DIGEST, {"h": tokens.digest(token)}


@dataclass(frozen=True, slots=True)
class Authenticated:
    session_id: str
    agent_id: str
    expires_at: int


def authenticate(db: Database, token: str, *, now: int, policy: Policy) -> Authenticated:
    """The active session ``token`` belongs to, or the 401/409/410 that says why not."""
    if not tokens.well_formed(token, SESSION_PREFIX):
        raise RacefreeError(AuthCode.INVALID_TOKEN)
    token_hash = tokens.digest(token)
    with db.read() as tx:
        row = tx.one(_SESSION_OF_DIGEST, {"h": token_hash})
        retired = None if row is not None else tx.one(reuse.SESSION_OF_RETIRED, {"h": token_hash})
    if row is not None and hmac.compare_digest(row["token_hash"], token_hash):
        return _check(row, now)
    if retired is None or not hmac.compare_digest(retired["retired_hash"], token_hash):
        raise RacefreeError(AuthCode.INVALID_TOKEN)
    if retired["revoked_at"] is not None:
        raise reuse.revoked_error(retired["id"], retired["revoke_reason"])
    if reuse.forgiven(retired, token_hash, now, policy):
        raise RacefreeError(
            AuthCode.INVALID_TOKEN,
            detail="a renewal replaced this token",
            hint="use the token that the renewal returned",
        )
    with db.write() as tx:
        error = reuse.revoke_for_reuse(tx, retired["id"], retired["agent_id"], token_hash, now=now)
    raise error


def _check(row: Row, now: int) -> Authenticated:
    if row["revoked_at"] is not None:
        raise RacefreeError(
            SessionCode.SESSION_REVOKED,
            details={"session_id": row["id"], "revoke_reason": row["revoke_reason"]},
        )
    if row["expires_at"] <= now:
        raise RacefreeError(
            SessionCode.TOKEN_EXPIRED, details={"session_id": row["id"]}, hint="open a new session"
        )
    unavailable = availability.unavailable(row["agent_status"], row["agent_id"])
    if unavailable is not None:
        raise unavailable
    return Authenticated(row["id"], row["agent_id"], row["expires_at"])
