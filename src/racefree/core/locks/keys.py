"""64-bit advisory lock keys from a keyed hash of namespace + key.

Never ``hashtext`` (32 bits, and its output is not guaranteed stable across
PostgreSQL versions) and never a 32-bit key pair: with 32 bits, unrelated keys
collide after ~77k distinct keys (birthday bound) and a collision makes two
unrelated operations exclude each other. BLAKE2b with a fixed key and the
namespace as ``person`` gives a stable signed int64 for ``pg_*advisory*(bigint)``.
"""

from __future__ import annotations

import hashlib

_HASH_KEY = b"racefree.advisory.v1"
MAX_NAMESPACE_BYTES = 16  # BLAKE2b's personalization length


def advisory_key(namespace: str, key: str) -> int:
    """The signed 64-bit PostgreSQL advisory key of ``key`` within ``namespace``."""
    person = namespace.encode()
    if len(person) > MAX_NAMESPACE_BYTES:
        raise ValueError(f"namespace {namespace!r} is longer than {MAX_NAMESPACE_BYTES} bytes")
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=_HASH_KEY, person=person).digest()
    return int.from_bytes(digest, "big", signed=True)
