"""``/v1/transactions`` through the real app and, for the races, a real server process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from racefree import owners
from racefree.client import OwnerSigner
from racefree.testing import Server, http_race
from racefree.transactions.approvals import approval_action
from tests.factory import OWNER_KEY, OWNER_PUBLIC

PROBLEM = "application/problem+json"
Client = TestClient | httpx.Client


def make_agent(
    client: Client, op: dict[str, str], *, balance: int = 1_000_000, owner: str | None = None
) -> str:
    body: dict[str, Any] = {"name": "agent"}
    if owner is not None:
        body["owner_public_key"] = owner
    response = client.post("/v1/agents", json=body, headers=op)
    assert response.status_code == 201, response.text
    agent_id = str(response.json()["id"])
    if balance:
        deposit = client.post(
            f"/v1/agents/{agent_id}/deposit", json={"amount": str(balance)}, headers=op
        )
        assert deposit.status_code == 200, deposit.text
    return agent_id


def make_session(
    client: Client, op: dict[str, str], agent_id: str, **constraints: int
) -> dict[str, str]:
    body: dict[str, Any] = {"agent_id": agent_id}
    if constraints:  # amounts are strings of minor units, counts are integers
        body["constraints"] = {
            k: v if k == "max_transactions" else str(v) for k, v in constraints.items()
        }
    response = client.post("/v1/sessions", json=body, headers=op)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def transfer(amount: int) -> dict[str, str]:
    return {"type": "TRANSFER", "amount": str(amount), "destination": "acct:shop"}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


@pytest.fixture
def agent_session(client: TestClient, operator_headers: dict[str, str]) -> dict[str, str]:
    return make_session(client, operator_headers, make_agent(client, operator_headers))


def test_an_instant_transfer_answers_200_with_its_final_status(
    client: TestClient, operator_headers: dict[str, str], agent_session: dict[str, str]
) -> None:
    response = client.post("/v1/transactions", json=transfer(250), headers=agent_session)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["tier"], body["amount"]) == ("CONFIRMED", "INSTANT", "250")
    txn_id = body["transaction_id"]
    assert client.get(f"/v1/transactions/{txn_id}", headers=agent_session).json() == body
    assert client.get(f"/v1/transactions/{txn_id}", headers=operator_headers).json() == body
    listed = client.get("/v1/transactions", headers=agent_session).json()
    assert [t["transaction_id"] for t in listed["transactions"]] == [txn_id]


def test_delay_and_approval_transfers_are_queued_with_202(
    client: TestClient, agent_session: dict[str, str]
) -> None:
    delayed = client.post("/v1/transactions", json=transfer(20_000), headers=agent_session)
    approval = client.post("/v1/transactions", json=transfer(60_000), headers=agent_session)
    assert (delayed.status_code, delayed.json()["tier"]) == (202, "DELAY")
    assert (approval.status_code, approval.json()["tier"]) == (202, "APPROVAL")
    assert delayed.json()["status"] == approval.json()["status"] == "QUEUED"


def test_the_owner_approves_with_a_signature_and_the_transfer_executes(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    agent_id = make_agent(client, operator_headers, owner=OWNER_PUBLIC)
    headers = make_session(client, operator_headers, agent_id)
    txn_id = client.post("/v1/transactions", json=transfer(60_000), headers=headers).json()[
        "transaction_id"
    ]
    problem(client.post(f"/v1/transactions/{txn_id}/approve"), 401, "OWNER_AUTH_REQUIRED")

    nonce = client.get("/v1/nonce").json()["nonce"]
    now = client.app.state.runtime.clock.now()  # type: ignore[attr-defined]
    signature = OwnerSigner(OWNER_KEY).header(approval_action(txn_id), nonce, now)
    response = client.post(f"/v1/transactions/{txn_id}/approve", headers={owners.HEADER: signature})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CONFIRMED"
    assert (
        client.get(f"/v1/agents/{agent_id}", headers=operator_headers).json()["owner"]["state"]
        == "LOCKED"
    )


def test_an_operator_rejects_a_queued_transfer_once(
    client: TestClient, operator_headers: dict[str, str], agent_session: dict[str, str]
) -> None:
    txn_id = client.post("/v1/transactions", json=transfer(20_000), headers=agent_session).json()[
        "transaction_id"
    ]
    problem(
        client.post(f"/v1/transactions/{txn_id}/reject", headers=agent_session), 403, "FORBIDDEN"
    )
    first = client.post(f"/v1/transactions/{txn_id}/reject", headers=operator_headers)
    assert (first.status_code, first.json()["status"]) == (200, "CANCELLED")
    again = problem(
        client.post(f"/v1/transactions/{txn_id}/reject", headers=operator_headers),
        409,
        "TX_ALREADY_PROCESSED",
    )
    assert again["details"]["current"] == "CANCELLED"


def test_insufficient_balance_answers_400_and_leaves_the_transaction_failed(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    headers = make_session(
        client, operator_headers, make_agent(client, operator_headers, balance=100)
    )
    body = problem(
        client.post("/v1/transactions", json=transfer(500), headers=headers),
        400,
        "INSUFFICIENT_BALANCE",
    )
    txn_id = body["details"]["transaction_id"]
    txn = client.get(f"/v1/transactions/{txn_id}", headers=headers).json()
    assert (txn["status"], txn["error"]) == ("FAILED", "INSUFFICIENT_BALANCE")


@pytest.mark.parametrize(
    "body",
    [
        {"type": "TRANSFER", "amount": "0", "destination": "x"},
        {"type": "TRANSFER", "amount": "-5", "destination": "x"},
        {"type": "TRANSFER", "amount": 5, "destination": "x"},
        {"type": "TRANSFER", "amount": "12abc", "destination": "x"},
        {"type": "TRANSFER", "amount": "5", "destination": ""},
        {"type": "REFUND", "amount": "5", "destination": "x"},
        {"type": "TRANSFER", "amount": "5", "destination": "x", "extra": 1},
    ],
    ids=["zero", "negative", "number", "not-digits", "no-destination", "unknown-type", "extra"],
)
def test_bad_bodies_are_validation_errors(
    client: TestClient, agent_session: dict[str, str], body: dict[str, Any]
) -> None:
    problem(
        client.post("/v1/transactions", json=body, headers=agent_session), 400, "VALIDATION_ERROR"
    )


def test_submitting_needs_a_session_token(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    problem(client.post("/v1/transactions", json=transfer(5)), 401, "AUTH_REQUIRED")
    response = client.post("/v1/transactions", json=transfer(5), headers=operator_headers)
    assert response.status_code in (401, 403)


def test_another_agents_session_cannot_see_a_transaction(
    client: TestClient, operator_headers: dict[str, str], agent_session: dict[str, str]
) -> None:
    txn_id = client.post("/v1/transactions", json=transfer(5), headers=agent_session).json()[
        "transaction_id"
    ]
    stranger = make_session(client, operator_headers, make_agent(client, operator_headers))
    problem(client.get(f"/v1/transactions/{txn_id}", headers=stranger), 404, "TX_NOT_FOUND")
    assert client.get("/v1/transactions", headers=stranger).json()["transactions"] == []


def test_idempotency_key_replays_and_mismatches(
    client: TestClient, agent_session: dict[str, str]
) -> None:
    keyed = {**agent_session, "Idempotency-Key": '"order-42"'}
    first = client.post("/v1/transactions", json=transfer(300), headers=keyed)
    again = client.post("/v1/transactions", json=transfer(300), headers=keyed)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    problem(
        client.post("/v1/transactions", json=transfer(301), headers=keyed),
        422,
        "IDEMPOTENCY_KEY_MISMATCH",
    )


def test_openapi_documents_the_transaction_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    submit = spec["paths"]["/v1/transactions"]["post"]["responses"]
    assert "SESSION_LIMIT_EXCEEDED" in submit["403"]["description"]
    assert "IDEMPOTENCY_KEY_IN_USE" in submit["409"]["description"]
    assert "IDEMPOTENCY_KEY_MISMATCH" in submit["422"]["description"]
    # the kill switch guard's 503 is added next to the executor's, not over it
    assert {"EXECUTOR_UNAVAILABLE", "SYSTEM_LOCKED"} <= set(
        submit["503"]["content"]["application/problem+json"]["examples"]
    )
    assert "202" in submit
    approve = spec["paths"]["/v1/transactions/{transaction_id}/approve"]["post"]["responses"]
    assert "TX_EXPIRED" in approve["410"]["description"]


@pytest.mark.server
@pytest.mark.parametrize(
    ("constraints", "limit"),
    [
        ({"max_transactions": 5}, "max_transactions"),
        ({"max_total_amount": 500}, "max_total_amount"),
    ],
    ids=["max_transactions", "max_total_amount"],
)
def test_twenty_concurrent_submissions_to_a_real_server_admit_exactly_five(
    server: Server, constraints: dict[str, int], limit: str
) -> None:
    op = server.operator_headers()
    with server.client() as client:
        agent_id = make_agent(client, op)
        headers = make_session(client, op, agent_id, **constraints)

    responses = http_race(
        20, server.base_url, "POST", "/v1/transactions", headers=headers, json=transfer(100)
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [403] * 15
    refused = [r.json() for r in responses if r.status_code == 403]
    assert {(b["code"], b["details"]["limit"]) for b in refused} == {
        ("SESSION_LIMIT_EXCEEDED", limit)
    }
    with server.client() as client:
        listed = client.get("/v1/transactions", headers=headers).json()["transactions"]
        assert [t["status"] for t in listed] == ["CONFIRMED"] * 5
        agent = client.get(f"/v1/agents/{agent_id}", headers=op).json()
    assert int(agent["balance"]) == 1_000_000 - 500


@pytest.mark.server
def test_ten_identical_keyed_requests_to_a_real_server_execute_once(server: Server) -> None:
    op = server.operator_headers()
    with server.client() as client:
        agent_id = make_agent(client, op)
        headers = make_session(client, op, agent_id)
    keyed = {**headers, "Idempotency-Key": "same-key"}

    responses = http_race(
        10, server.base_url, "POST", "/v1/transactions", headers=keyed, json=transfer(100)
    )

    ok = [r for r in responses if r.status_code == 200]
    busy = [r for r in responses if r.status_code != 200]
    assert ok and all(r.json() == ok[0].json() for r in ok)
    for r in busy:
        assert problem(r, 409, "IDEMPOTENCY_KEY_IN_USE")["retryable"] is True
        assert r.headers["retry-after"] == "1"
    with server.client() as client:
        replay = client.post("/v1/transactions", json=transfer(100), headers=keyed)
        listed = client.get("/v1/transactions", headers=headers).json()["transactions"]
        agent = client.get(f"/v1/agents/{agent_id}", headers=op).json()
    assert replay.json() == ok[0].json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(listed) == 1
    assert int(agent["balance"]) == 1_000_000 - 100


def test_an_engaged_kill_switch_stops_submissions_and_cancels_queued_transfers(
    client: TestClient, operator_headers: dict[str, str], agent_session: dict[str, str]
) -> None:
    queued = client.post("/v1/transactions", json=transfer(20_000), headers=agent_session)
    txn_id = queued.json()["transaction_id"]
    activated = client.post(
        "/v1/kill-switch/activate", json={"reason": "drill"}, headers=operator_headers
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["transactions_cancelled"] == 1

    problem(
        client.post("/v1/transactions", json=transfer(5), headers=agent_session),
        503,
        "SYSTEM_LOCKED",
    )
    txn = client.get(f"/v1/transactions/{txn_id}", headers=operator_headers).json()
    assert (txn["status"], txn["error"]) == ("CANCELLED", "KILL_SWITCH")
