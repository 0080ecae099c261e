"""The next token of a renewal: random, or derived so a lost response can be replayed.

With a grace window (``RACEFREE_SESSION_RENEWAL_GRACE_S`` > 0) the successor
of a token is ``HMAC-SHA256(server key, session id | current token hash)``
turned into a token body: every renewal that presents the same token within
the window computes the same successor, so a client whose response was lost
(or that lost a race) gets the winner's token without any raw token being
stored. The server key is made once, on first use, by an insert-if-absent
into ``system_settings`` and then read back, so racing processes agree on it.

The trade-off: whoever can read both the key and a session's previous token
hash can compute its current token. Without a grace window successors are
random (:func:`racefree.core.tokens.mint`) and nothing is derivable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from racefree.core import tokens
from racefree.core.db import Tx
from racefree.sessions.model import SESSION_PREFIX
from racefree.system import settings as system_settings

GRACE_KEY_SETTING = "session_grace_key"


def grace_key(tx: Tx, *, now: int) -> bytes:
    """The server key for successor tokens, created once (the first writer wins)."""
    stored = system_settings.get_or_insert(
        tx, GRACE_KEY_SETTING, lambda: secrets.token_hex(32), now=now
    )
    return bytes.fromhex(stored)


def derived_successor(key: bytes, session_id: str, current_hash: str) -> str:
    """The deterministic successor of the token whose digest is ``current_hash``."""
    seed = hmac.new(key, f"{session_id}|{current_hash}".encode(), hashlib.sha256).digest()
    return tokens.with_checksum(SESSION_PREFIX, tokens.body_from_seed(seed))
