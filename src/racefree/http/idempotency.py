"""``Idempotency-Key`` on every mutating request (POST, PATCH, DELETE) (docs/http-api.md).

One implementation for every route, as pure ASGI middleware around the router
(inside the kill-switch guard, so a refused request claims nothing). The store
and its rules are :mod:`racefree.core.idempotency`; this module binds them to
HTTP:

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
from typing import Any

from anyio import to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racefree import owners
from racefree.core import idempotency
from racefree.core.db import UNAVAILABLE
from racefree.core.errors import ErrorCode, RacefreeError
from racefree.http import edge
from racefree.http.problems import add_response, errors, problem_response
from racefree.runtime import Runtime

log = logging.getLogger("racefree.http")

MUTATING = frozenset({"POST", "PATCH", "DELETE", "PUT"})
_KEY_HEADER = idempotency.HEADER.lower().encode()
_REPLAYED = (idempotency.REPLAYED_HEADER.lower().encode(), b"true")
#: Response headers that are part of the answer (request ids and the like are per request).
KEPT_HEADERS = frozenset({"content-type", "location", "etag", "cache-control"})
#: Statuses after which a retry should run again, not be replayed.
RETRY_STATUSES = frozenset({401, 408, 429})
_NONCE_BYTES = 12
_OWNER_SIGNATURE = owners.HEADER.lower().encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _credential(scope: Scope) -> str:
    """What the request authenticates with: the bearer token, else the owner's signature
    (``approve``: single use, so a retry resends the very same one)."""
    return _header(scope, b"authorization") or _header(scope, _OWNER_SIGNATURE) or ""


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


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole request body (already bounded by the body-limit middleware outside)."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


async def _too_large() -> Message:
    raise edge.BodyTooLarge


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class _Buffered:
    """The app's response, held until its answer is stored."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    @property
    def status(self) -> int:
        return int(self.start["status"]) if self.start else 500

    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.start.get("headers", [])) if self.start else []

    def retry_expected(self) -> bool:
        if self.status >= 500 or self.status in RETRY_STATUSES:
            return True
        return any(name.lower() == b"retry-after" for name, _ in self.headers())

    def answer(self, credential: Credential) -> idempotency.Stored:
        kept = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in self.headers()
            if name.decode("latin-1").lower() in KEPT_HEADERS
        ]
        return idempotency.Stored(self.status, kept, credential.seal(bytes(self.body)))

    async def flush(self, send: Send) -> None:
        assert self.start is not None
        await send(self.start)
        await send({"type": "http.response.body", "body": bytes(self.body)})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = _header(scope, _KEY_HEADER) if scope["type"] == "http" else None
        if raw is None or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        try:
            key = idempotency.parse_key(raw)
        except RacefreeError as error:
            await problem_response(error)(scope, receive, send)
            return
        assert key is not None
        try:
            body, messages = await _read_body(receive)
        except edge.BodyTooLarge:
            # nothing claimed; the pipeline answers (guard and authentication first, then 413)
            await self.app(scope, _too_large, send)
            return
        credential = Credential(_credential(scope))
        request_hash = idempotency.fingerprint(
            scope["method"].encode(),
            scope["path"].encode(),
            idempotency.canonical_body(body),
        )
        try:
            stored = await to_thread.run_sync(self._claim, credential.scope, key, request_hash)
        except RacefreeError as error:
            await problem_response(error)(scope, receive, send)
            return
        if stored is not None:
            await _replay(stored, credential, send)
            return
        await self._run(scope, _replaying(messages, receive), send, credential, key)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, credential: Credential, key: str
    ) -> None:
        buffered = _Buffered()
        try:
            await self.app(scope, receive, buffered.send)
        except BaseException:
            await to_thread.run_sync(self._finish, credential.scope, key, None)
            raise
        answer = None if buffered.retry_expected() else buffered.answer(credential)
        await to_thread.run_sync(self._finish, credential.scope, key, answer)
        await buffered.flush(send)

    # -- blocking: the database ----------------------------------------------------

    def _claim(self, scope: str, key: str, request_hash: str) -> idempotency.Stored | None:
        with self.runtime.db.write() as tx:
            return idempotency.claim(
                tx,
                scope,
                key,
                request_hash,
                now=self.runtime.clock.now(),
                ttl_s=self.runtime.settings.idempotency_ttl_s,
            )

    def _finish(self, scope: str, key: str, answer: idempotency.Stored | None) -> None:
        """Store the answer, or free the key (``None``); never fail the response for it."""
        try:
            with self.runtime.db.write() as tx:
                if answer is None:
                    idempotency.release(tx, scope, key)
                else:
                    idempotency.complete(tx, scope, key, answer)
        except UNAVAILABLE:  # the key stays claimed: its retries get 409 until it expires
            log.warning("could not store the answer of an Idempotency-Key request")


async def _replay(stored: idempotency.Stored, credential: Credential, send: Send) -> None:
    try:
        body = credential.open(stored.body)
    except InvalidTag:  # pragma: no cover - the scope is derived from the same credential
        body = b""
    headers: list[Any] = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers += [_REPLAYED, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``Idempotency-Key`` header and its two conflicts on every mutating operation."""
    docs = errors(ErrorCode.IDEMPOTENCY_KEY_IN_USE, ErrorCode.IDEMPOTENCY_KEY_MISMATCH)
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
