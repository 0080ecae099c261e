"""Nonces are stateless until used (issue 9, item 11).

``GET /v1/nonce`` and ``GET /v1/kill-switch/nonce`` need no credentials, so
they must not write a row per call (before, each call inserted one -- even
while the system was locked). A nonce is HMAC-signed with its expiry; it is
recorded once, when a signature uses it, and a second use is 401
``INVALID_NONCE``.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from racefree import owners
from racefree.client import OwnerSigner
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from tests.http.test_transactions import make_agent, problem

KEY = Ed25519PrivateKey.generate()
NEW_KEY = OwnerSigner(Ed25519PrivateKey.generate()).public_key


def _rows(db: Database) -> dict[str, int]:
    with db.read() as tx:
        return {
            table: int(tx.scalar(f"SELECT COUNT(*) FROM {table}"))
            for table in ("nonces", "audit_log", "system_settings")
        }


def test_issuing_nonces_writes_nothing_even_while_locked(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    client.get("/v1/nonce")  # the server's nonce key is made once, on first use
    before = _rows(db)
    issued = {client.get("/v1/nonce").json()["nonce"] for _ in range(30)}
    activated = client.post(
        "/v1/kill-switch/activate", json={"reason": "x"}, headers=operator_headers
    )
    assert activated.status_code == 200
    locked = _rows(db)
    issued |= {client.get("/v1/kill-switch/nonce").json()["nonce"] for _ in range(30)}
    assert len(issued) == 60  # all different
    assert locked["nonces"] == before["nonces"] == 0
    assert _rows(db) == locked  # nothing at all written by 30 unauthenticated calls


def _signed_change(client: TestClient, agent_id: str, clock: ManualClock, nonce: str) -> str:
    action = owners.change_action(agent_id, NEW_KEY)
    return OwnerSigner(KEY).header(action, nonce, clock.now())


def _patch(client: TestClient, op: dict[str, str], agent_id: str, header: str):  # type: ignore[no-untyped-def]
    return client.patch(
        f"/v1/agents/{agent_id}",
        json={"owner_public_key": NEW_KEY},
        headers={**op, owners.HEADER: header},
    )


def test_a_nonce_is_recorded_once_on_use_and_refused_the_second_time(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    agent_id = make_agent(client, operator_headers, balance=0, owner=OwnerSigner(KEY).public_key)
    nonce = client.get("/v1/nonce").json()["nonce"]
    header = _signed_change(client, agent_id, clock, nonce)
    assert _patch(client, operator_headers, agent_id, header).status_code == 200
    assert _rows(db)["nonces"] == 1
    problem(_patch(client, operator_headers, agent_id, header), 401, "INVALID_NONCE")
    assert _rows(db)["nonces"] == 1


@pytest.mark.parametrize("forgery", ["tampered", "made_up", "expired"])
def test_a_forged_or_expired_nonce_is_refused(
    client: TestClient,
    operator_headers: dict[str, str],
    db: Database,
    clock: ManualClock,
    forgery: str,
) -> None:
    agent_id = make_agent(client, operator_headers, balance=0, owner=OwnerSigner(KEY).public_key)
    nonce = client.get("/v1/nonce").json()["nonce"]
    if forgery == "tampered":  # a later expiry under the same MAC
        stamp, rest = nonce.split(".", 1)
        nonce = f"{int(stamp) + 3600}.{rest}"
    elif forgery == "made_up":
        nonce = "x" * len(nonce)
    else:
        clock.advance(owners.NONCE_TTL_S + 1)
    header = _signed_change(client, agent_id, clock, nonce)
    problem(_patch(client, operator_headers, agent_id, header), 401, "INVALID_NONCE")
    assert _rows(db)["nonces"] == 0
    agent = client.get(f"/v1/agents/{agent_id}", headers=operator_headers).json()
    assert agent["owner"]["state"] == "GRACE"
