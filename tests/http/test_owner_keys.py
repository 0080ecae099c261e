"""Owner keys that anyone can sign for are refused everywhere a key enters (issue 9, item 1).

A small-order Ed25519 point (the identity, the all-zero encoding, the points
of order 2, 4 and 8) or a non-canonical encoding (y >= p) lets anyone forge
a signature that verifies: with the identity as public key, ``R = identity,
S = 0`` satisfies ``[S]B = R + [k]A`` for every message. Such keys are 400
``VALIDATION_ERROR`` on agent create, on PATCH, and inside a signature
envelope; signatures with a non-canonical ``S`` (``S >= L``) are refused.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from racefree import owners
from racefree.client import OwnerSigner
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.transactions.approvals import approval_action
from tests.http.test_transactions import make_agent, make_session, problem, transfer

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493


def _encode(y: int, sign: int = 0) -> str:
    return owners.b64url_encode((y | sign << 255).to_bytes(32, "little"))


# the torsion points (libsodium's blocklist) and non-canonical encodings of small-order y
_ORDER_8 = (
    2707385501144840649318225287225658788936804267575313519463743609750303402022,
    55188659117513257062467267217118295137698188065244968500265048394206261417927,
)
WEAK_KEYS = [
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # the identity point (order 1)
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # y = 0: order 4
    _encode(0, sign=1),  # y = 0 with the other x: order 4
    _encode(1, sign=1),  # the identity with the sign bit set (x = 0, "negative zero")
    _encode(P - 1),  # y = -1: order 2
    *(_encode(y, sign) for y in _ORDER_8 for sign in (0, 1)),  # the order-8 points
    _encode(P),  # y = p: non-canonical 0
    _encode(P + 1),  # y = p + 1: non-canonical identity
    _encode(P + 1, sign=1),
    _encode(2**255 - 1),  # y = 2^255 - 1 >= p: non-canonical
]
SIGNER = Ed25519PrivateKey.generate()
GOOD_KEY = OwnerSigner(SIGNER).public_key


def _issues(response: Any) -> str:
    body = problem(response, 400, "VALIDATION_ERROR")
    return json.dumps(body["details"])


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_a_weak_key_is_refused_when_an_agent_is_created(
    client: TestClient, operator_headers: dict[str, str], key: str
) -> None:
    response = client.post(
        "/v1/agents", json={"name": "a", "owner_public_key": key}, headers=operator_headers
    )
    assert "owner_public_key" in _issues(response)
    listed = client.get("/v1/agents", headers=operator_headers).json()
    assert listed["agents"] == []


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_a_weak_key_is_refused_by_patch(
    client: TestClient, operator_headers: dict[str, str], key: str
) -> None:
    agent_id = make_agent(client, operator_headers, balance=0)
    response = client.patch(
        f"/v1/agents/{agent_id}", json={"owner_public_key": key}, headers=operator_headers
    )
    assert "owner_public_key" in _issues(response)
    agent = client.get(f"/v1/agents/{agent_id}", headers=operator_headers).json()
    assert agent["owner"]["state"] == "NONE"


def test_a_good_key_is_still_accepted(client: TestClient, operator_headers: dict[str, str]) -> None:
    response = client.post(
        "/v1/agents", json={"name": "a", "owner_public_key": GOOD_KEY}, headers=operator_headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["owner"] == {"public_key": GOOD_KEY, "state": "GRACE"}


def _forged_envelope(public_key: str, action: str, nonce: str, timestamp: int) -> str:
    """A signature anyone can make for the identity key: R = identity, S = 0."""
    signature = bytes([1]) + bytes(31) + bytes(32)
    payload = {
        "public_key": public_key,
        "action": action,
        "nonce": nonce,
        "timestamp": timestamp,
        "signature": owners.b64url_encode(signature),
    }
    return owners.b64url_encode(json.dumps(payload).encode())


def _approval_waiting(
    client: TestClient, op: dict[str, str], db: Database, owner_key: str
) -> tuple[str, str]:
    """An APPROVAL-tier transfer of an agent whose stored owner key is ``owner_key``.

    The key is written with SQL: a weak key that entered before this fix (or by
    any other path) must still be refused when a signature names it.
    """
    agent_id = make_agent(client, op, balance=10**9, owner=GOOD_KEY)
    with db.write() as tx:
        tx.execute(
            "UPDATE agents SET owner_public_key = :k WHERE id = :id",
            {"k": owner_key, "id": agent_id},
        )
    session = make_session(client, op, agent_id)
    submitted = client.post("/v1/transactions", json=transfer(10**6), headers=session)
    assert submitted.status_code == 202, submitted.text
    return agent_id, submitted.json()["transaction_id"]


def test_a_forged_signature_for_the_identity_key_approves_nothing(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    identity = WEAK_KEYS[0]
    agent_id, txn_id = _approval_waiting(client, operator_headers, db, identity)
    nonce = client.get("/v1/nonce").json()["nonce"]
    header = _forged_envelope(identity, approval_action(txn_id), nonce, clock.now())
    response = client.post(f"/v1/transactions/{txn_id}/approve", headers={owners.HEADER: header})
    assert "public_key" in _issues(response)
    txn = client.get(f"/v1/transactions/{txn_id}", headers=operator_headers).json()
    assert txn["status"] == "QUEUED"
    agent = client.get(f"/v1/agents/{agent_id}", headers=operator_headers).json()
    assert agent["owner"]["state"] == "GRACE"  # ownership did not lock in to the weak key


def test_a_signature_with_a_non_canonical_s_is_refused(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    _agent_id, txn_id = _approval_waiting(client, operator_headers, db, GOOD_KEY)
    nonce = client.get("/v1/nonce").json()["nonce"]
    action = approval_action(txn_id)
    good = SIGNER.sign(owners.signed_message(action, nonce, clock.now()))
    s = int.from_bytes(good[32:], "little") + L  # the same S modulo L, not canonical
    payload = {
        "public_key": GOOD_KEY,
        "action": action,
        "nonce": nonce,
        "timestamp": clock.now(),
        "signature": owners.b64url_encode(good[:32] + s.to_bytes(32, "little")),
    }
    header = owners.b64url_encode(json.dumps(payload).encode())
    response = client.post(f"/v1/transactions/{txn_id}/approve", headers={owners.HEADER: header})
    problem(response, 401, "INVALID_SIGNATURE")
    txn = client.get(f"/v1/transactions/{txn_id}", headers=operator_headers).json()
    assert txn["status"] == "QUEUED"
    # the canonical signature over the same nonce still works: the refusal spent nothing
    proper = OwnerSigner(SIGNER).header(action, nonce, clock.now())
    approved = client.post(f"/v1/transactions/{txn_id}/approve", headers={owners.HEADER: proper})
    assert approved.status_code == 200, approved.text
