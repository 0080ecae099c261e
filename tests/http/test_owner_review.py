"""Owner verification under review: single-use nonces, binding, malformed input.

Everything runs through the real app on the real database (both engines).
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from racefree import owners
from racefree.client import OwnerSigner
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.testing import race, tally, tally_responses
from racefree.transactions.approvals import approval_action
from tests.factory import OWNER_KEY, OWNER_PUBLIC
from tests.http.test_transactions import make_agent, make_session, problem, transfer


def _approval_tx(client: TestClient, op: dict[str, str], agent_id: str) -> str:
    headers = make_session(client, op, agent_id)
    response = client.post("/v1/transactions", json=transfer(60_000), headers=headers)
    assert (response.status_code, response.json()["tier"]) == (202, "APPROVAL"), response.text
    return str(response.json()["transaction_id"])


def _approve(client: TestClient, txn_id: str, header: str):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/transactions/{txn_id}/approve", headers={owners.HEADER: header})


def _nonce_rows(db: Database) -> int:
    with db.read() as tx:
        return int(tx.scalar("SELECT COUNT(*) FROM nonces"))


def test_two_concurrent_uses_of_one_nonce_make_exactly_one_winner(
    client: TestClient, db: Database, clock: ManualClock
) -> None:
    nonce = client.get("/v1/nonce").json()["nonce"]
    header = OwnerSigner(OWNER_KEY).header("approve", nonce, clock.now())

    def use(_: int) -> str:
        with db.write() as tx:
            return owners.verify(tx, header, action="approve", now=clock.now()).public_key

    outcomes = race(2, use)
    assert tally(outcomes) == {"won": 1, "INVALID_NONCE": 1}
    assert _nonce_rows(db) == 1


def test_two_concurrent_approvals_with_one_signature_approve_once(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    agent_id = make_agent(client, operator_headers, owner=OWNER_PUBLIC)
    txn_id = _approval_tx(client, operator_headers, agent_id)
    nonce = client.get("/v1/nonce").json()["nonce"]
    header = OwnerSigner(OWNER_KEY).header(approval_action(txn_id), nonce, clock.now())

    outcomes = race(2, lambda _: _approve(client, txn_id, header))
    assert tally(outcomes) == {"won": 2}
    assert tally_responses(outcomes.values) == {"200": 1, "INVALID_NONCE": 1}
    balance = client.get(f"/v1/agents/{agent_id}", headers=operator_headers).json()["balance"]
    assert balance == str(1_000_000 - 60_000)  # debited once


def test_a_signature_for_one_transaction_does_not_approve_another(
    client: TestClient, operator_headers: dict[str, str], clock: ManualClock
) -> None:
    agent_id = make_agent(client, operator_headers, owner=OWNER_PUBLIC)
    first, second = (_approval_tx(client, operator_headers, agent_id) for _ in range(2))
    nonce = client.get("/v1/nonce").json()["nonce"]
    header = OwnerSigner(OWNER_KEY).header(approval_action(first), nonce, clock.now())
    problem(_approve(client, second, header), 401, "INVALID_SIGNATURE")
    assert _approve(client, first, header).status_code == 200


def test_a_zero_padded_nonce_is_not_a_second_use_of_the_same_nonce(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    """``<expires_at>`` is parsed with ``int()``, so ``0<expires_at>.<rest>`` carried the same
    MAC: a spent nonce could be used again (unboundedly on SQLite), and on PostgreSQL a padded
    nonce longer than the column answered 500."""
    agent_id = make_agent(client, operator_headers, owner=OWNER_PUBLIC)
    nonce = client.get("/v1/nonce").json()["nonce"]
    first = _approval_tx(client, operator_headers, agent_id)
    signer = OwnerSigner(OWNER_KEY)
    assert (
        _approve(
            client, first, signer.header(approval_action(first), nonce, clock.now())
        ).status_code
        == 200
    )
    for padding in (1, 20):
        txn_id = _approval_tx(client, operator_headers, agent_id)
        reused = "0" * padding + nonce
        header = signer.header(approval_action(txn_id), reused, clock.now())
        problem(_approve(client, txn_id, header), 401, "INVALID_NONCE")
    assert _nonce_rows(db) == 1


def test_a_deeply_nested_signature_header_is_a_401_not_a_500(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    agent_id = make_agent(client, operator_headers, owner=OWNER_PUBLIC)
    txn_id = _approval_tx(client, operator_headers, agent_id)
    header = owners.b64url_encode(b"[" * 3000)
    assert len(header) <= 4096
    problem(_approve(client, txn_id, header), 401, "INVALID_SIGNATURE")


def test_malformed_fields_in_the_signature_are_catalog_errors(
    client: TestClient, operator_headers: dict[str, str], clock: ManualClock
) -> None:
    agent_id = make_agent(client, operator_headers, owner=OWNER_PUBLIC)
    txn_id = _approval_tx(client, operator_headers, agent_id)
    nonce = client.get("/v1/nonce").json()["nonce"]
    good = json.loads(
        owners.b64url_decode(
            OwnerSigner(OWNER_KEY).header(approval_action(txn_id), nonce, clock.now())
        )
    )
    cases = {
        "signature": ["é" * 10, "", "AA", "!!!!", "A" * 87],
        "public_key": ["é", "", "A" * 43, "AA=="],
        "nonce": ["9" * 5000 + ".a.b", "." * 10, "é.é.é"],
    }
    for field, values in cases.items():
        for value in values:
            header = owners.b64url_encode(json.dumps({**good, field: value}).encode())
            response = _approve(client, txn_id, header)
            assert 400 <= response.status_code < 500, (field, value, response.text)
            assert response.json()["code"] in {
                "INVALID_SIGNATURE",
                "INVALID_NONCE",
                "VALIDATION_ERROR",
            }


def test_verify_refuses_a_nonce_from_another_servers_key(db: Database, clock: ManualClock) -> None:
    key = bytes(32)
    foreign = owners._mint(key, clock.now())[0]  # a MAC under a different key
    header = OwnerSigner(OWNER_KEY).header("approve", foreign, clock.now())
    try:
        with db.write() as tx:
            owners.issue_nonce(tx, now=clock.now())  # this server's key exists
            owners.verify(tx, header, action="approve", now=clock.now())
    except RacefreeError as exc:
        assert exc.code.value == "INVALID_NONCE"
    else:
        raise AssertionError("a nonce under another key was accepted")


def test_an_overlong_nonce_is_invalid_not_a_crash(db: Database, clock: ManualClock) -> None:
    """The kill switch recovery's header has no length cap: a validly signed header whose
    nonce is thousands of digits reached ``int()`` (ValueError past 4300 digits -> 500)."""
    nonce = "9" * 5000 + ".a.b"
    header = OwnerSigner(OWNER_KEY).header("approve", nonce, clock.now())
    try:
        with db.write() as tx:
            owners.issue_nonce(tx, now=clock.now())
            owners.verify(tx, header, action="approve", now=clock.now())
    except RacefreeError as exc:
        assert exc.code.value == "INVALID_NONCE"
    else:
        raise AssertionError("an overlong nonce was accepted")
