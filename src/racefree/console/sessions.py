"""Console sessions: what the console's cookie stands for.

Signing in with an operator token creates a console session and hands the
browser a fresh random token of its own (``rf_con_...``) in an HttpOnly,
SameSite=Strict cookie; only the token's SHA-256 is stored. A session lasts
12 hours and ends at sign-out (a CAS on ``ended_at IS NULL``). The operator
token itself never goes into a cookie, and a deleted operator ends its console
sessions with it (foreign key, ON DELETE CASCADE).

CSRF: every form carries ``HMAC-SHA256(cookie token, purpose)``. Only a page
the console rendered for this session can know it (the cookie is HttpOnly and
never sent cross-site), it is tied to the session, and it needs no storage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from racefree import operators
from racefree.core import audit, tokens
from racefree.core.audit import Severity
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError
from racefree.core.ids import new_id
from racefree.operators.errors import AuthCode

TOKEN_PREFIX = "rf_con_"  # noqa: S105 - a prefix
LIFETIME_S = 12 * 3600
_CSRF_PURPOSE = b"racefree-console-csrf-v1"

SIGNED_IN_EVENT = "CONSOLE_SIGNED_IN"
SIGNED_OUT_EVENT = "CONSOLE_SIGNED_OUT"


@dataclass(frozen=True, slots=True)
class ConsoleOperator:
    """The operator behind a console session."""

    session_id: str
    operator_id: str
    label: str
    expires_at: int

    @property
    def actor(self) -> str:
        return f"operator:{self.label}"


@dataclass(frozen=True, slots=True)
class SignedIn:
    operator: ConsoleOperator
    token: str  # for the cookie only; never stored


def sign_in(tx: Tx, operator_token: str, *, now: int) -> SignedIn:
    """A new console session for the operator of ``operator_token`` (401 if it is not one)."""
    operator = operators.authenticate(tx, operator_token)
    tx.execute("DELETE FROM console_sessions WHERE expires_at <= :now", {"now": now})
    token = tokens.mint(TOKEN_PREFIX)
    session_id = new_id()
    expires_at = now + LIFETIME_S
    tx.execute(
        "INSERT INTO console_sessions (id, operator_id, token_hash, created_at, expires_at)"
        " VALUES (:id, :operator_id, :token_hash, :now, :expires_at)",
        {
            "id": session_id,
            "operator_id": operator.id,
            "token_hash": tokens.digest(token),
            "now": now,
            "expires_at": expires_at,
        },
    )
    signed_in = ConsoleOperator(session_id, operator.id, operator.label, expires_at)
    audit.record(
        tx,
        SIGNED_IN_EVENT,
        at=now,
        severity=Severity.WARNING,
        actor=signed_in.actor,
        details={"console_session_id": session_id, "expires_at": expires_at},
    )
    return SignedIn(signed_in, token)


def authenticate(tx: Tx, token: str, *, now: int) -> ConsoleOperator:
    """The console session of a cookie token; 401 ``INVALID_TOKEN`` unless live."""
    if not tokens.well_formed(token, TOKEN_PREFIX):
        raise RacefreeError(AuthCode.INVALID_TOKEN, detail="not a console session")
    row = tx.one(
        "SELECT c.id, c.token_hash, c.expires_at, o.id AS operator_id, o.label"
        " FROM console_sessions c JOIN operators o ON o.id = c.operator_id"
        " WHERE c.token_hash = :h AND c.ended_at IS NULL AND c.expires_at > :now",
        {"h": tokens.digest(token), "now": now},
    )
    if row is None or not tokens.matches(token, row["token_hash"]):
        raise RacefreeError(AuthCode.INVALID_TOKEN, detail="the console session is not valid")
    return ConsoleOperator(row["id"], row["operator_id"], row["label"], row["expires_at"])


def sign_out(tx: Tx, operator: ConsoleOperator, *, now: int) -> bool:
    """End the session; False if it had ended already (a second sign-out is a no-op)."""
    ended = tx.execute(
        "UPDATE console_sessions SET ended_at = :now WHERE id = :id AND ended_at IS NULL",
        {"now": now, "id": operator.session_id},
    )
    if ended:
        audit.record(
            tx,
            SIGNED_OUT_EVENT,
            at=now,
            actor=operator.actor,
            details={"console_session_id": operator.session_id},
        )
    return bool(ended)


def csrf_token(cookie_token: str) -> str:
    """The CSRF token of the session (or pre-sign-in cookie) ``cookie_token``."""
    return hmac.new(cookie_token.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def csrf_valid(cookie_token: str | None, submitted: str | None) -> bool:
    if not cookie_token or not submitted:
        return False
    return hmac.compare_digest(csrf_token(cookie_token), submitted)


def login_nonce() -> str:
    """The random value of the pre-sign-in cookie that the sign-in form's CSRF token binds."""
    return secrets.token_urlsafe(32)
