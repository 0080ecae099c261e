"""Bearer tokens: ``<prefix><43 base62 chars of 256 random bits><6 chars checksum>``.

Each kind of token has its owner's prefix (``operators.OPERATOR_PREFIX``,
``sessions.model.SESSION_PREFIX``); this module only mints and checks them.

The checksum (CRC32, base62) lets a mistyped or truncated token be refused
before any database work. Only the SHA-256 of a token is ever stored; lookups
are by that hash and the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 43  # ceil(256 / log2(62))
CHECKSUM_LENGTH = 6


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def mint(prefix: str) -> str:
    """A new token with ``prefix``; show it once, store :func:`digest` of it."""
    body = _base62(secrets.randbits(256), BODY_LENGTH)
    return f"{prefix}{body}{_checksum(body)}"


def body_from_seed(seed: bytes) -> str:
    """A token body derived from 32+ bytes of key material (for deterministic successors)."""
    return _base62(int.from_bytes(seed[:32], "big"), BODY_LENGTH)


def with_checksum(prefix: str, body: str) -> str:
    return f"{prefix}{body}{_checksum(body)}"


def well_formed(token: str, prefix: str) -> bool:
    """Prefix, length, alphabet and checksum hold; says nothing about validity."""
    if len(token) != len(prefix) + BODY_LENGTH + CHECKSUM_LENGTH or not token.startswith(prefix):
        return False
    rest = token[len(prefix) :]
    if not (rest.isascii() and rest.isalnum()):  # ASCII letters and digits: the alphabet
        return False
    body, check = rest[:BODY_LENGTH], rest[BODY_LENGTH:]
    return hmac.compare_digest(_checksum(body), check)


def digest(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    """Constant-time check of ``token`` against a stored digest."""
    return hmac.compare_digest(digest(token), stored_digest)
