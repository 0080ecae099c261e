"""Codes of owners: signatures and nonces (AUTH), ownership (OWNER), and the agent whose owner
columns are asked for (AGENT_NOT_FOUND).
"""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class OwnerCode(Code):
    """Codes of owners: signatures and nonces."""

    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    INVALID_NONCE = "INVALID_NONCE"
    AGENT_NOT_FOUND = "AGENT_NOT_FOUND"
    OWNER_AUTH_REQUIRED = "OWNER_AUTH_REQUIRED"
    OWNER_LOCKED = "OWNER_LOCKED"
    OWNER_MISMATCH = "OWNER_MISMATCH"


register(
    ErrorSpec(
        OwnerCode.INVALID_SIGNATURE,
        401,
        "AUTH",
        False,
        "Invalid signature",
        "the owner signature does not verify",
    ),
    ErrorSpec(
        OwnerCode.INVALID_NONCE,
        401,
        "AUTH",
        False,
        "Invalid nonce",
        "the nonce is unknown, expired or already used",
    ),
    ErrorSpec(
        OwnerCode.AGENT_NOT_FOUND,
        404,
        "AGENT",
        False,
        "Agent not found",
        "the agent does not exist",
    ),
    ErrorSpec(
        OwnerCode.OWNER_AUTH_REQUIRED,
        401,
        "OWNER",
        False,
        "Owner authentication required",
        "this action needs the owner's signature",
    ),
    ErrorSpec(
        OwnerCode.OWNER_LOCKED,
        403,
        "OWNER",
        False,
        "Owner locked",
        "ownership is locked in and cannot be removed",
    ),
    ErrorSpec(
        OwnerCode.OWNER_MISMATCH,
        403,
        "OWNER",
        False,
        "Owner mismatch",
        "the signature is not from the agent's owner",
    ),
)
