"""``Idempotency-Key`` on every mutating request (POST, PATCH, DELETE) (docs/http-api.md).

One implementation for every route, run by the request pipeline
(:mod:`racefree.http.pipeline`) inside its one worker-thread hop, after the
kill-switch guard and authentication (a refused or unauthenticated request
claims nothing) and before the body is parsed. The store and its rules are
:mod:`racefree.core.idempotency`; this module binds them to HTTP:

* the **scope** is the credential that sent the request (a hash of the
  ``Authorization`` header, or of ``X-Owner-Signature`` for the owner's approval), so
  keys of different clients never meet;
* the **fingerprint** is method, path and the canonical JSON body: the same key
  with another request is 422 ``IDEMPOTENCY_KEY_MISMATCH``;
* the stored **answer** (status, ``Content-Type``, ``Location``, ``ETag``,
  ``Cache-Control``, body) is replayed with ``Idempotent-Replayed: true``. Bodies
  are sealed (AES-GCM) with a key derived from the credential itself, which the
  server does not store: an answer that carries a secret (a session's token)
  can be replayed to its client and is unreadable to anyone reading the database.

Answers that say "try again" (5xx, 401, 408, 429, or carrying ``Retry-After``)
free the key instead of being stored, so the retry runs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from racefree import owners
from racefree.core import idempotency
from racefree.core.db import UNAVAILABLE
from racefree.core.errors import IdempotencyCode
from racefree.http.problems import add_response, errors
from racefree.runtime import Runtime

log = logging.getLogger("racefree.http")

MUTATING = frozenset({"POST", "PATCH", "DELETE", "PUT"})
#: Response headers that are part of the answer (request ids and the like are per request).
KEPT_HEADERS = frozenset({"content-type", "location", "etag", "cache-control"})
#: Statuses after which a retry should run again, not be replayed.
RETRY_STATUSES = frozenset({401, 408, 429})
_NONCE_BYTES = 12


class Credential:
    """What the answers of one credential are stored under, and sealed with."""

    def __init__(self, authorization: str) -> None:
        secret = authorization.encode("latin-1")
        self.scope = hashlib.sha256(b"racefree idempotency scope\0" + secret).hexdigest()
        self._aead = AESGCM(hmac.new(secret, b"racefree idempotency seal", "sha256").digest())

    def seal(self, body: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, body, self.scope.encode())

    def open(self, sealed: bytes) -> bytes:
        return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], self.scope.encode())


@dataclass(frozen=True, slots=True)
class Claim:
    """A key this request owns: :func:`finish` stores its answer or frees it."""

    credential: Credential
    key: str


def _credential(request: Request) -> Credential:
    """What the request authenticates with: the bearer token, else the owner's signature
    (``approve``: single use, so a retry resends the very same one)."""
    headers = request.headers
    return Credential(headers.get("authorization") or headers.get(owners.HEADER) or "")


def begin(runtime: Runtime, request: Request, body: bytes) -> Claim | Response | None:
    """Claim the request's ``Idempotency-Key`` (blocking: one short write transaction).

    ``None``: no key (or not a mutation), run as usual. A :class:`Claim`: this request
    runs and then :func:`finish` es. A :class:`Response`: the stored answer, replayed.
    Raises 400 for an invalid key, 409 ``IDEMPOTENCY_KEY_IN_USE``, 422 ``..._MISMATCH``.
    """
    if request.method not in MUTATING:
        return None
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    if key is None:
        return None
    credential = _credential(request)
    request_hash = idempotency.fingerprint(
        request.method.encode(),
        request.scope["path"].encode(),
        idempotency.canonical_body(body),
    )
    with runtime.db.write() as tx:
        stored = idempotency.claim(
            tx,
            credential.scope,
            key,
            request_hash,
            now=runtime.clock.now(),
            ttl_s=runtime.settings.idempotency_ttl_s,
        )
    if stored is None:
        return Claim(credential, key)
    return _replay(stored, credential)


def finish(runtime: Runtime, claim: Claim, response: Response | None) -> None:
    """Store ``response`` as the key's answer, or free the key (``None``, or an answer that
    says "try again"); never fails the response for it (blocking)."""
    answer = None if response is None or _retry_expected(response) else _stored(response, claim)
    try:
        with runtime.db.write() as tx:
            if answer is None:
                idempotency.release(tx, claim.credential.scope, claim.key)
            else:
                idempotency.complete(tx, claim.credential.scope, claim.key, answer)
    except UNAVAILABLE:  # the key stays claimed: its retries get 409 until it expires
        log.warning("could not store the answer of an Idempotency-Key request")


def _retry_expected(response: Response) -> bool:
    if response.status_code >= 500 or response.status_code in RETRY_STATUSES:
        return True
    return "retry-after" in response.headers


def _stored(response: Response, claim: Claim) -> idempotency.Stored:
    kept = [(k, v) for k, v in response.headers.items() if k in KEPT_HEADERS]
    body = bytes(response.body)
    return idempotency.Stored(response.status_code, kept, claim.credential.seal(body))


def _replay(stored: idempotency.Stored, credential: Credential) -> Response:
    try:
        body = credential.open(stored.body)
    except InvalidTag:  # pragma: no cover - the scope is derived from the same credential
        body = b""
    headers = {**dict(stored.headers), idempotency.REPLAYED_HEADER: "true"}
    return Response(body, status_code=stored.status, headers=headers)


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``Idempotency-Key`` header and its two conflicts on every mutating operation."""
    docs = errors(IdempotencyCode.IDEMPOTENCY_KEY_IN_USE, IdempotencyCode.IDEMPOTENCY_KEY_MISMATCH)
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() not in MUTATING:
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name") == idempotency.HEADER for p in parameters):
                parameters.append(KEY_PARAMETER)
            for status_code, doc in docs.items():
                add_response(operation.setdefault("responses", {}), status_code, doc)
    return schema


KEY_PARAMETER: dict[str, Any] = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: the same key and request replay the first answer "
    f"(with `{idempotency.REPLAYED_HEADER}: true`), per credential, for "
    "RACEFREE_IDEMPOTENCY_TTL_S.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_LENGTH,
        "pattern": "^[\\x20-\\x7E]+$",
    },
}
