"""Webhook signing secrets at rest: encrypted, never hashed.

Standard Webhooks signs with the secret itself (HMAC), so the server must be
able to read it back: a hash, as kept for tokens and passwords, cannot sign.
The secret is shown once at creation and stored encrypted with AES-256-GCM,
with the webhook's id as associated data (a ciphertext copied onto another
webhook's row does not decrypt).

The key is ``RACEFREE_WEBHOOK_SECRET_KEY`` (32 bytes, urlsafe base64) when set
-- recommended: a database dump alone then reveals no signing secret. When it
is not set, a key is made once and kept in ``system_settings`` (first writer
wins, so every process agrees); that protects against a leaked column or log
line, not against a full dump. Ciphertexts name their key (``env`` / ``db``),
so a key that changed is reported instead of producing garbage.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets as stdlib_secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from racefree.core.db import Tx
from racefree.events.settings import EventSettings
from racefree.system import settings as system_settings

KEY_SETTING = "webhook_secret_key"
_NONCE_BYTES = 12


class SecretKeyError(RuntimeError):
    """The webhook secret key is malformed or is not the one a secret was sealed with."""


class SecretBox:
    def __init__(self, key: bytes, key_id: str) -> None:
        self._aead = AESGCM(key)
        self.key_id = key_id

    def seal(self, secret: str, webhook_id: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), webhook_id.encode())
        return f"{self.key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, webhook_id: str) -> str:
        key_id, _, blob = stored.partition(":")
        if key_id != self.key_id:
            raise SecretKeyError(
                f"webhook {webhook_id}'s secret was sealed with the {key_id!r} key, "
                f"but the {self.key_id!r} key is configured"
            )
        raw = base64.urlsafe_b64decode(blob)
        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], webhook_id.encode())
        except InvalidTag:
            raise SecretKeyError(
                f"webhook {webhook_id}'s secret does not decrypt with the configured key"
            ) from None
        return plain.decode()


def _decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SecretKeyError("RACEFREE_WEBHOOK_SECRET_KEY must be 32 bytes, urlsafe base64")
    return key


def box(tx: Tx, settings: EventSettings, *, now: int) -> SecretBox:
    """The box for the configured key (made and stored on first use when none is set)."""
    if settings.webhook_secret_key is not None:
        return SecretBox(_decode_key(settings.webhook_secret_key.get_secret_value()), "env")
    return SecretBox(_decode_key(_stored_key(tx, now)), "db")


def _stored_key(tx: Tx, now: int) -> str:
    return system_settings.get_or_insert(
        tx,
        KEY_SETTING,
        lambda: base64.urlsafe_b64encode(stdlib_secrets.token_bytes(32)).decode(),
        now=now,
    )
