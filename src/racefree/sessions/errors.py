"""Session codes: renewal, limits, revocation, and the session-token AUTH answers."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class SessionCode(Code):
    """Session codes: renewal, limits, revocation, and the session-token AUTH answers."""

    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    SESSION_REVOKED = "SESSION_REVOKED"
    TOKEN_REUSED = "TOKEN_REUSED"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    RENEWAL_CONFLICT = "RENEWAL_CONFLICT"
    RENEWAL_LIMIT_REACHED = "RENEWAL_LIMIT_REACHED"
    SESSION_ABSOLUTE_LIFETIME_EXCEEDED = "SESSION_ABSOLUTE_LIFETIME_EXCEEDED"
    SESSION_RENEWAL_MISMATCH = "SESSION_RENEWAL_MISMATCH"
    RENEWAL_TOO_EARLY = "RENEWAL_TOO_EARLY"
    SESSION_LIMIT_EXCEEDED = "SESSION_LIMIT_EXCEEDED"
    SESSION_ALREADY_REVOKED = "SESSION_ALREADY_REVOKED"


register(
    ErrorSpec(
        SessionCode.TOKEN_EXPIRED,
        401,
        "AUTH",
        False,
        "Token expired",
        "the session has expired",
    ),
    ErrorSpec(
        SessionCode.SESSION_REVOKED,
        401,
        "AUTH",
        False,
        "Session revoked",
        "the session was revoked",
    ),
    ErrorSpec(
        SessionCode.TOKEN_REUSED,
        401,
        "AUTH",
        False,
        "Token reused",
        "a rotated-out token was presented again; the session is revoked",
    ),
    ErrorSpec(
        SessionCode.SESSION_NOT_FOUND,
        404,
        "SESSION",
        False,
        "Session not found",
        "the session does not exist",
    ),
    ErrorSpec(
        SessionCode.RENEWAL_CONFLICT,
        409,
        "SESSION",
        False,
        "Renewal conflict",
        "another request renewed this session first",
    ),
    ErrorSpec(
        SessionCode.RENEWAL_LIMIT_REACHED,
        403,
        "SESSION",
        False,
        "Renewal limit reached",
        "the session has used all its renewals",
    ),
    ErrorSpec(
        SessionCode.SESSION_ABSOLUTE_LIFETIME_EXCEEDED,
        403,
        "SESSION",
        False,
        "Session absolute lifetime exceeded",
        "renewing would carry the session past its absolute lifetime",
    ),
    ErrorSpec(
        SessionCode.SESSION_RENEWAL_MISMATCH,
        403,
        "SESSION",
        False,
        "Session renewal mismatch",
        "the token belongs to another session",
    ),
    ErrorSpec(
        SessionCode.RENEWAL_TOO_EARLY,
        403,
        "SESSION",
        True,
        "Renewal too early",
        "too little of the session's lifetime has passed to renew it",
    ),
    ErrorSpec(
        SessionCode.SESSION_LIMIT_EXCEEDED,
        403,
        "SESSION",
        False,
        "Session limit exceeded",
        "the session's spending constraints do not admit this",
    ),
    ErrorSpec(
        SessionCode.SESSION_ALREADY_REVOKED,
        409,
        "SESSION",
        False,
        "Session already revoked",
        "the session was revoked before",
    ),
)
