"""``Idempotency-Key`` (IETF draft ``httpapi-idempotency-key-header``): the shared store.

One row per (scope, key) in ``idempotency_keys``; the scope is the credential
that sent the request (a hash of it), so two clients can never see each other's
answers or collide on a key. A request's life:

1. :func:`claim` -- one ``INSERT ... ON CONFLICT DO NOTHING`` (an expired row is
   taken over in the same statement). Exactly one of N concurrent copies gets
   the claim: on PostgreSQL the others' INSERTs wait for its commit, on SQLite
   writes are serialized. A loser gets what the winner's row says: the stored
   answer (a replay), 409 ``IDEMPOTENCY_KEY_IN_USE`` while the winner runs, or
   422 ``IDEMPOTENCY_KEY_MISMATCH`` when its request differs.
2. the request runs;
3. :func:`complete` stores the answer -- or :func:`release` frees the key when
   the answer says "try again" (5xx, 401, 429, anything retryable), so a retry
   can run.

A process that dies between 2 and 3 leaves the key claimed: its retries get 409
until the row expires. Never running a request twice is the point; a stuck key
costs a new key, a second run could cost a second payment.

Rows live ``RACEFREE_IDEMPOTENCY_TTL_S`` (:func:`sweep` deletes the expired ones).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from racefree.core.db import Tx
from racefree.core.errors import GeneralCode, IdempotencyCode, RacefreeError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
RETRY_AFTER_S = 1
SWEEP_BATCH = 1000


def parse_key(raw: str | None) -> str | None:
    """The key, without the draft's structured-field quotes; 400 when it is not a valid key.

    Valid: 1 to 255 printable ASCII characters (no control characters).
    """
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise invalid_key("is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise invalid_key(f"is longer than {MAX_KEY_LENGTH} characters")
    if not all(" " <= c <= "~" for c in key):
        raise invalid_key("has characters other than printable ASCII")
    return key


def invalid_key(why: str) -> RacefreeError:
    return RacefreeError(
        GeneralCode.VALIDATION_ERROR,
        detail=f"the {HEADER} header {why}",
        details={"issues": [{"loc": ["header", HEADER], "msg": why, "type": "value_error"}]},
    )


def fingerprint(*parts: bytes) -> str:
    """SHA-256 over the request's identifying parts (method, path, canonical body)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def canonical_body(body: bytes) -> bytes:
    """JSON bodies in canonical form (key order and spacing do not make a new request)."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return body
    return json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored answer: status, the headers worth replaying, the (sealed) body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


_CLAIM = (
    "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, expires_at)"
    " VALUES (:scope, :key, :hash, :now, :expires_at)"
    " ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,"
    " response_status = NULL, response_headers = NULL, response_body = NULL,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at"
    " WHERE idempotency_keys.expires_at <= :now"
    " RETURNING scope"
)


def claim(
    tx: Tx, scope: str, key: str, request_hash: str, *, now: int, ttl_s: int
) -> Stored | None:
    """None: this request owns the key and runs. Else the stored answer to replay.

    Raises 409 ``IDEMPOTENCY_KEY_IN_USE`` while another request with the key runs,
    422 ``IDEMPOTENCY_KEY_MISMATCH`` when the key was used for another request.
    """
    params = {"scope": scope, "key": key, "hash": request_hash, "now": now}
    if tx.one(_CLAIM, {**params, "expires_at": now + ttl_s}) is not None:
        return None
    row = tx.one(
        "SELECT request_hash, response_status, response_headers, response_body"
        " FROM idempotency_keys WHERE scope = :scope AND key = :key",
        params,
    )
    if row is None:  # pragma: no cover - swept between the INSERT and this read
        raise _in_use()
    if row["request_hash"] != request_hash:
        raise RacefreeError(
            IdempotencyCode.IDEMPOTENCY_KEY_MISMATCH,
            hint="use a new Idempotency-Key for a different request",
        )
    if row["response_status"] is None:
        raise _in_use()
    body = row["response_body"]
    return Stored(
        int(row["response_status"]),
        [(k, v) for k, v in json.loads(row["response_headers"])],
        bytes(body),
    )


def _in_use() -> RacefreeError:
    return RacefreeError(
        IdempotencyCode.IDEMPOTENCY_KEY_IN_USE,
        detail="a request with this Idempotency-Key is still running",
        retry_after=RETRY_AFTER_S,
    )


def complete(tx: Tx, scope: str, key: str, answer: Stored) -> None:
    """Store the answer of the request that owns the key (first answer wins)."""
    tx.execute(
        "UPDATE idempotency_keys SET response_status = :status, response_headers = :headers,"
        " response_body = :body WHERE scope = :scope AND key = :key"
        " AND response_status IS NULL",
        {
            "scope": scope,
            "key": key,
            "status": answer.status,
            "headers": json.dumps(answer.headers),
            "body": answer.body,
        },
    )


def release(tx: Tx, scope: str, key: str) -> None:
    """Free a claimed key whose request ended in a way a retry should not replay."""
    tx.execute(
        "DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key"
        " AND response_status IS NULL",
        {"scope": scope, "key": key},
    )


def sweep(tx: Tx, *, now: int, batch: int = SWEEP_BATCH) -> int:
    """Delete up to ``batch`` expired keys; the number deleted."""
    return tx.execute(
        "DELETE FROM idempotency_keys WHERE (scope, key) IN (SELECT scope, key"
        " FROM idempotency_keys WHERE expires_at <= :now LIMIT :batch)",
        {"now": now, "batch": batch},
    )
