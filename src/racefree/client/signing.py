"""Owner signatures, client side: ``X-Owner-Signature`` values (docs/http-api.md).

The header is ``base64url(JSON {public_key, action, nonce, timestamp,
signature})`` where ``signature`` is Ed25519 over
``racefree:<action>:<nonce>:<timestamp>``; keys and signatures are base64url
without padding. Nonces come from ``GET /v1/nonce`` (or
``GET /v1/kill-switch/nonce`` while the kill switch is engaged) and are single
use. The server verifies (``racefree.owners``); this module only signs.

Needs ``cryptography`` (imported when a signer is made, so the rest of the
client imports without it).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HEADER = "X-Owner-Signature"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_message(action: str, nonce: str, timestamp: int) -> bytes:
    """The bytes an owner signs for ``action``."""
    return f"racefree:{action}:{nonce}:{timestamp}".encode()


# -- the actions the server asks owners to sign ----------------------------------------


def approve_action(transaction_id: str) -> str:
    """Approving a queued APPROVAL transaction."""
    return f"approve_transaction:{transaction_id}"


def change_owner_action(agent_id: str, new_public_key: str | None) -> str:
    """Moving ``agent_id`` to ``new_public_key`` (``None``: removal, refused once LOCKED)."""
    return f"change_owner:{agent_id}:{new_public_key or ''}"


RECOVERY_ACTION = "kill_switch_recovery"


class OwnerSigner:
    """Signs owner actions with one Ed25519 private key.

    ``private_key`` is a ``cryptography`` ``Ed25519PrivateKey``, its 32 raw
    seed bytes, or those bytes base64url-encoded::

        signer = OwnerSigner(Ed25519PrivateKey.generate())
        client.agents.create("bot", owner_public_key=signer.public_key)
        header = signer.header(approve_action(txn_id), nonce)
    """

    def __init__(
        self,
        private_key: Ed25519PrivateKey | bytes | str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if isinstance(private_key, str):
            private_key = _b64url_decode(private_key)
        if isinstance(private_key, bytes):
            private_key = Ed25519PrivateKey.from_private_bytes(private_key)
        self._key = private_key
        self._clock = clock  # the signature's timestamp must be within 5 minutes of the server's

    @classmethod
    def generate(cls, *, clock: Callable[[], float] = time.time) -> OwnerSigner:
        """A signer with a new random key."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate(), clock=clock)

    @property
    def public_key(self) -> str:
        """The owner key to register on an agent (base64url, 43 characters)."""
        return b64url(self._key.public_key().public_bytes_raw())

    def header(self, action: str, nonce: str, timestamp: int | None = None) -> str:
        """The ``X-Owner-Signature`` value for ``action`` with a fresh ``nonce``."""
        when = int(self._clock()) if timestamp is None else timestamp
        payload = {
            "public_key": self.public_key,
            "action": action,
            "nonce": nonce,
            "timestamp": when,
            "signature": b64url(self._key.sign(signed_message(action, nonce, when))),
        }
        return b64url(json.dumps(payload, separators=(",", ":")).encode())

    def __repr__(self) -> str:  # never the private key
        return f"OwnerSigner(public_key={self.public_key!r})"
