"""Owner signatures: Ed25519 proofs that an agent's owner approved an action.

A client fetches a nonce (``GET /v1/nonce``), signs
``racefree:<action>:<nonce>:<timestamp>`` with the owner's key, and sends
``X-Owner-Signature: base64url(JSON {public_key, action, nonce, timestamp,
signature})``; keys and signatures are base64url without padding (the client
side, signing, is ``racefree.client.OwnerSigner``; this module verifies).

Nonces are stateless until used: ``<expires_at>.<random>.<mac>`` where the MAC
is an HMAC-SHA256 (server key in ``system_settings``, made once) over the
expiry and the random part. Issuing one writes nothing, so the unauthenticated
nonce routes cannot be used to fill the database, locked or not. A nonce is
single-use: :func:`verify` records it (``INSERT ... ON CONFLICT DO NOTHING``
into ``nonces``, kept until it expires) in the caller's transaction -- a
second use finds it there, and an action that rolls back does not spend it.

The first valid signature locks ownership in (``GRACE -> LOCKED``):
:func:`lock_in` is the CAS ``UPDATE agents SET owner_verified = 1 ... WHERE
owner_verified = 0`` -- idempotent, audited once, never an error for the
second caller.

Owner changes (docs/state-machines.md), :func:`change_owner`::

    NONE  -> GRACE          operator sets a key
    GRACE -> GRACE | NONE   operator changes or removes the key
    GRACE -> LOCKED         first valid owner signature (lock_in)
    LOCKED -> LOCKED        change signed by the current owner (action change_action(...))
    LOCKED -> NONE          refused: 403 OWNER_LOCKED
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from racefree.core import audit
from racefree.core.condition import Condition
from racefree.core.db import Database, Tx
from racefree.core.errors import RacefreeError, issue, validation_error
from racefree.owners.errors import OwnerCode
from racefree.owners.machine import LOCKED, OWNERS, Move
from racefree.system import settings as system_settings
from racefree.system.kill_switch import hold_normal

NONCE_TTL_S = 300
TIMESTAMP_WINDOW_S = 300
HEADER = "X-Owner-Signature"


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_message(action: str, nonce: str, timestamp: int) -> bytes:
    return f"racefree:{action}:{nonce}:{timestamp}".encode()


def valid_public_key(text: str) -> bool:
    """``text`` is the canonical base64url encoding of a usable Ed25519 public key.

    Usable means libsodium's ``crypto_core_ed25519_is_valid_point``: a
    canonical encoding (y < p) of a point on the curve, in the prime-order
    subgroup, and not of small order. A small-order key (the identity, the
    all-zero encoding, the points of order 2, 4 and 8) verifies signatures
    that anyone can make -- ``R = identity, S = 0`` for the identity -- so it
    would let anyone act as the owner.
    """
    try:
        raw = b64url_decode(text)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 32 or b64url_encode(raw) != text:
        return False
    return bool(crypto_core_ed25519_is_valid_point(raw))


def key_error(*loc: str) -> RacefreeError:
    """400 ``VALIDATION_ERROR`` for an owner key that is not a usable Ed25519 key."""
    return validation_error(
        [
            issue(
                *loc,
                msg="not a usable Ed25519 public key (canonical base64url, not of small order)",
            )
        ]
    )


@dataclass(frozen=True, slots=True)
class OwnerProof:
    """A verified signature: ``public_key`` signed ``action``."""

    public_key: str
    action: str


NONCE_KEY_SETTING = "owner_nonce_key"
_MAC_BYTES = 16
_NONCE_MAX_CHARS = 64  # the ``nonces.nonce`` column; what this server mints is shorter


def _stored_nonce_key(tx: Tx) -> bytes | None:
    stored = system_settings.get(tx, NONCE_KEY_SETTING)
    return None if stored is None else bytes.fromhex(stored)


def _nonce_key(tx: Tx, *, now: int) -> bytes:
    """The server's nonce key, made once (the first writer wins)."""
    stored = system_settings.get_or_insert(
        tx, NONCE_KEY_SETTING, lambda: secrets.token_hex(32), now=now
    )
    return bytes.fromhex(stored)


def _mac(key: bytes, expires_at: int, random_part: str) -> str:
    digest = hmac.new(key, f"nonce:{expires_at}:{random_part}".encode(), hashlib.sha256)
    return b64url_encode(digest.digest()[:_MAC_BYTES])


def _mint(key: bytes, now: int) -> tuple[str, int]:
    expires_at = now + NONCE_TTL_S
    random_part = secrets.token_urlsafe(12)
    return f"{expires_at}.{random_part}.{_mac(key, expires_at, random_part)}", expires_at


def issue_nonce(tx: Tx, *, now: int) -> tuple[str, int]:
    """A fresh single-use nonce and its expiry; writes only the server key, once ever."""
    return _mint(_nonce_key(tx, now=now), now)


def issue_nonce_stateless(db: Database, *, now: int) -> tuple[str, int]:
    """:func:`issue_nonce` for unauthenticated routes: a read (one write ever, for the key)."""
    with db.read() as tx:
        key = _stored_nonce_key(tx)
    if key is None:
        with db.write() as tx:
            key = _nonce_key(tx, now=now)
    return _mint(key, now)


def _nonce_expiry(tx: Tx, nonce: str, now: int) -> int | None:
    """The expiry of a nonce this server issued and that is still valid, else None."""
    parts = nonce.split(".")
    # only the canonical spelling of the expiry: ``int()`` also reads ``0<expires_at>``, and a
    # zero-padded copy of a spent nonce would carry the same MAC and count as a new nonce
    if (
        len(nonce) > _NONCE_MAX_CHARS
        or len(parts) != 3
        or not parts[0].isascii()
        or not parts[0].isdigit()
        or parts[0] != str(int(parts[0]))
    ):
        return None
    expires_at, random_part, mac = int(parts[0]), parts[1], parts[2]
    key = _stored_nonce_key(tx)
    if key is None or not hmac.compare_digest(mac, _mac(key, expires_at, random_part)):
        return None
    return expires_at if now < expires_at <= now + NONCE_TTL_S else None


def _use_nonce(tx: Tx, nonce: str, *, now: int) -> None:
    """Record ``nonce`` as used (in the caller's transaction); 401 ``INVALID_NONCE`` if not
    this server's, expired, or used before. Used nonces are kept until they expire."""
    expires_at = _nonce_expiry(tx, nonce, now)
    if expires_at is None:
        raise RacefreeError(OwnerCode.INVALID_NONCE)
    tx.execute("DELETE FROM nonces WHERE expires_at <= :now", {"now": now})
    recorded = tx.execute(
        "INSERT INTO nonces (nonce, expires_at) VALUES (:nonce, :exp)"
        " ON CONFLICT (nonce) DO NOTHING",
        {"nonce": nonce, "exp": expires_at},
    )
    if recorded != 1:
        raise RacefreeError(OwnerCode.INVALID_NONCE, detail="this nonce was used before")


def _bad(detail: str) -> RacefreeError:
    return RacefreeError(OwnerCode.INVALID_SIGNATURE, detail=detail)


def _parse(header: str) -> dict[str, Any]:
    try:
        payload = json.loads(b64url_decode(header.strip()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: deeply nested JSON ("[[[[...") -- malformed, not a server fault
        raise _bad("the owner signature header is not base64url JSON") from None
    if not isinstance(payload, dict):
        raise _bad("the owner signature header is not a JSON object")
    fields = {"public_key": str, "action": str, "nonce": str, "timestamp": int, "signature": str}
    for name, kind in fields.items():
        if not isinstance(payload.get(name), kind) or isinstance(payload.get(name), bool):
            raise _bad(f"the owner signature lacks a valid {name!r}")
    return payload


def verify(tx: Tx, header: str | None, *, action: str, now: int) -> OwnerProof:
    """Check ``header`` signs ``action`` and consume its nonce, in ``tx``."""
    if not header:
        raise RacefreeError(
            OwnerCode.OWNER_AUTH_REQUIRED, hint=f"send {HEADER} signed with the owner's key"
        )
    payload = _parse(header)
    if payload["action"] != action:
        raise _bad(f"the signature is for {payload['action']!r}, not {action!r}")
    if abs(now - payload["timestamp"]) > TIMESTAMP_WINDOW_S:
        raise _bad("the signature's timestamp is outside the 5-minute window")
    if not valid_public_key(payload["public_key"]):
        raise key_error("header", HEADER, "public_key")
    try:
        # libsodium's verification is strict: S < L, R not of small order, a canonical key
        VerifyKey(b64url_decode(payload["public_key"])).verify(
            signed_message(action, payload["nonce"], payload["timestamp"]),
            b64url_decode(payload["signature"]),
        )
    except (BadSignatureError, ValueError, TypeError, binascii.Error):
        raise _bad("the signature does not verify") from None
    _use_nonce(tx, payload["nonce"], now=now)
    return OwnerProof(public_key=payload["public_key"], action=action)


def lock_in(tx: Tx, agent_id: str, proof: OwnerProof, *, now: int, actor: str = "owner") -> bool:
    """Lock ownership in for ``agent_id`` (GRACE -> LOCKED). True if this call did it.

    The signer must be the agent's owner: 404 ``AGENT_NOT_FOUND`` or 403
    ``OWNER_MISMATCH`` otherwise. An agent already LOCKED to this key is fine.
    """
    changed = tx.execute(
        "UPDATE agents SET owner_verified = 1, updated_at = :now"
        " WHERE id = :id AND owner_public_key = :pk AND owner_verified = 0",
        {"id": agent_id, "pk": proof.public_key, "now": now},
    )
    if changed:
        audit.record(
            tx,
            "OWNER_VERIFIED",
            at=now,
            actor=actor,
            agent_id=agent_id,
            details={"public_key": proof.public_key, "action": proof.action},
        )
        return True
    row = tx.one("SELECT owner_public_key FROM agents WHERE id = :id", {"id": agent_id})
    if row is None:
        raise RacefreeError(OwnerCode.AGENT_NOT_FOUND)
    if row["owner_public_key"] != proof.public_key:
        raise RacefreeError(OwnerCode.OWNER_MISMATCH)
    return False


def change_action(agent_id: str, new_key: str | None) -> str:
    """The action an owner signs to move ``agent_id``'s ownership to ``new_key``.

    It names the agent and the new key, so a captured signature cannot be
    replayed to hand the agent to someone else.
    """
    return f"change_owner:{agent_id}:{new_key or ''}"


def change_owner(
    tx: Tx,
    agent_id: str,
    new_key: str | None,
    *,
    now: int,
    proof: OwnerProof | None = None,
    actor: str | None = None,
) -> None:
    """Set, change or remove the owner key of ``agent_id`` (see the module docstring).

    Without ``proof`` the CAS only matches an unlocked agent (``owner_verified
    = 0``), so it can never overwrite an owner that locked in concurrently.
    With ``proof`` (already verified for :func:`change_action`) the signer
    must be the owner: a GRACE owner's signature locks in first, then the key
    moves under the CAS ``owner_public_key = <signer>``.
    """
    if new_key is not None and not valid_public_key(new_key):
        raise key_error("body", "owner_public_key")
    hold_normal(tx)  # refused (503) unless the kill switch is NORMAL, in this transaction
    if proof is None:
        _change_unlocked(tx, agent_id, new_key, now=now, actor=actor)
        return
    if proof.action != change_action(agent_id, new_key):
        raise _bad(f"the signature is for {proof.action!r}, not this change")
    lock_in(tx, agent_id, proof, now=now, actor=actor or "owner")
    if new_key is None:
        raise RacefreeError(OwnerCode.OWNER_LOCKED, details={"agent_id": agent_id})
    changed = tx.execute(
        "UPDATE agents SET owner_public_key = :new, updated_at = :now"
        " WHERE id = :id AND owner_verified = 1 AND owner_public_key = :signer",
        {"new": new_key, "now": now, "id": agent_id, "signer": proof.public_key},
    )
    if not changed:  # another signed change by the same owner won
        raise RacefreeError(OwnerCode.OWNER_MISMATCH, detail="the owner key changed meanwhile")
    _audit_change(tx, agent_id, new_key, now=now, actor=actor or "owner", signed=True)


def _change_unlocked(
    tx: Tx, agent_id: str, new_key: str | None, *, now: int, actor: str | None
) -> None:
    changed = tx.execute(
        "UPDATE agents SET owner_public_key = :new, updated_at = :now"
        " WHERE id = :id AND owner_verified = 0",
        {"new": new_key, "now": now, "id": agent_id},
    )
    if changed:
        _audit_change(tx, agent_id, new_key, now=now, actor=actor, signed=False)
        return
    verified = tx.scalar("SELECT owner_verified FROM agents WHERE id = :id", {"id": agent_id})
    if verified is None:
        raise RacefreeError(OwnerCode.AGENT_NOT_FOUND, details={"agent_id": agent_id})
    if new_key is None:
        code = OWNERS.transitions[Move.REMOVE_KEY].conflict_for(LOCKED)
        raise RacefreeError(code, details={"agent_id": agent_id})
    raise RacefreeError(
        OWNERS.transitions[Move.CHANGE_KEY].conflict_for(LOCKED),
        detail="ownership is locked in: the current owner must sign the change",
        hint=f"send {HEADER} signed by the current owner for action "
        f"{change_action(agent_id, new_key)!r}",
    )


def _audit_change(
    tx: Tx, agent_id: str, new_key: str | None, *, now: int, actor: str | None, signed: bool
) -> None:
    audit.record(
        tx,
        "OWNER_CHANGED",
        at=now,
        severity=audit.Severity.WARNING,
        actor=actor,
        agent_id=agent_id,
        details={"public_key": new_key, "signed": signed},
    )


def locked_owner(public_key: str | None = None) -> Condition:
    """Agents whose owner is LOCKED in (``public_key``'s, if given): a key someone proved to hold.

    Kill switch recovery demands such an owner's signature, and nobody else's.
    """
    locked = Condition.of("owner_verified = 1 AND owner_public_key IS NOT NULL")
    if public_key is None:
        return locked
    return locked & Condition.of("owner_public_key = :pk", pk=public_key)
