"""Authentication codes (domain AUTH) of operator tokens, the master password and route access;
sessions and owners add their own AUTH codes.
"""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class AuthCode(Code):
    """Authentication codes."""

    AUTH_REQUIRED = "AUTH_REQUIRED"
    INVALID_TOKEN = "INVALID_TOKEN"
    INVALID_MASTER_PASSWORD = "INVALID_MASTER_PASSWORD"
    FORBIDDEN = "FORBIDDEN"
    MASTER_PASSWORD_LOCKED = "MASTER_PASSWORD_LOCKED"
    OPERATOR_NOT_FOUND = "OPERATOR_NOT_FOUND"


register(
    ErrorSpec(
        AuthCode.AUTH_REQUIRED,
        401,
        "AUTH",
        False,
        "Authentication required",
        "this route needs credentials",
    ),
    ErrorSpec(
        AuthCode.INVALID_TOKEN,
        401,
        "AUTH",
        False,
        "Invalid token",
        "the token is malformed or unknown",
    ),
    ErrorSpec(
        AuthCode.INVALID_MASTER_PASSWORD,
        401,
        "AUTH",
        False,
        "Invalid master password",
        "the master password is wrong",
    ),
    ErrorSpec(
        AuthCode.FORBIDDEN,
        403,
        "AUTH",
        False,
        "Forbidden",
        "these credentials may not do this",
    ),
    ErrorSpec(
        AuthCode.MASTER_PASSWORD_LOCKED,
        429,
        "AUTH",
        False,
        "Master password locked",
        "too many wrong master passwords; wait for the lockout to end",
    ),
    ErrorSpec(
        AuthCode.OPERATOR_NOT_FOUND,
        404,
        "AUTH",
        False,
        "Operator not found",
        "no operator token has this id",
    ),
)
