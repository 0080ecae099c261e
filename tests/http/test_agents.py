"""HTTP /v1/agents: operator routes over the agent machine, accounts and owner rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from racefree import owners
from racefree.client import OwnerSigner
from racefree.core.clock import ManualClock

PROBLEM = "application/problem+json"
OWNER = Ed25519PrivateKey.generate()
OWNER_KEY = OwnerSigner(OWNER).public_key
NEXT_KEY = OwnerSigner(Ed25519PrivateKey.generate()).public_key


def _problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    return body


@pytest.fixture
def agent(client: TestClient, operator_headers: dict[str, str]) -> dict:
    response = client.post("/v1/agents", json={"name": "bot"}, headers=operator_headers)
    assert response.status_code == 201
    return response.json()


def test_create_returns_the_agent_object(agent: dict) -> None:
    assert agent["status"] == "ACTIVE"
    assert agent["balance"] == "0"
    assert agent["owner"] == {"public_key": None, "state": "NONE"}
    assert agent["created_at"].endswith("Z")


def test_create_with_an_owner_key_starts_in_grace(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    response = client.post(
        "/v1/agents",
        json={"name": "owned", "owner_public_key": OWNER_KEY},
        headers=operator_headers,
    )
    assert response.json()["owner"] == {"public_key": OWNER_KEY, "state": "GRACE"}


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x", "owner_public_key": "short"}, {"name": "x", "extra": 1}],
    ids=["missing-name", "empty-name", "bad-key", "unknown-field"],
)
def test_bad_agent_bodies_are_validation_errors(
    client: TestClient, operator_headers: dict[str, str], body: dict
) -> None:
    _problem(
        client.post("/v1/agents", json=body, headers=operator_headers), 400, "VALIDATION_ERROR"
    )


def test_get_list_and_missing(
    client: TestClient, operator_headers: dict[str, str], agent: dict
) -> None:
    assert client.get(f"/v1/agents/{agent['id']}", headers=operator_headers).json() == agent
    listed = client.get("/v1/agents", headers=operator_headers).json()
    assert [a["id"] for a in listed["agents"]] == [agent["id"]]
    # one pagination convention (racefree.http.paging): the cursor is the last id returned
    assert listed["next_after_id"] == agent["id"]
    after = client.get(f"/v1/agents?after_id={agent['id']}", headers=operator_headers).json()
    assert (after["agents"], after["next_after_id"]) == ([], agent["id"])
    _problem(client.get("/v1/agents/nope", headers=operator_headers), 404, "AGENT_NOT_FOUND")


def test_suspend_activate_terminate_with_their_conflicts(
    client: TestClient, operator_headers: dict[str, str], agent: dict
) -> None:
    base = f"/v1/agents/{agent['id']}"
    suspended = client.post(f"{base}/suspend", headers=operator_headers).json()
    assert (suspended["status"], suspended["suspension_reason"]) == ("SUSPENDED", "operator")
    _problem(client.post(f"{base}/suspend", headers=operator_headers), 409, "AGENT_SUSPENDED")
    assert client.post(f"{base}/activate", headers=operator_headers).json()["status"] == "ACTIVE"
    body = _problem(
        client.post(f"{base}/activate", headers=operator_headers), 409, "INVALID_STATE_TRANSITION"
    )
    assert body["details"] == {
        "current": "ACTIVE",
        "requested": "ACTIVE",
        "allowed": ["SUSPENDED", "TERMINATED"],
    }
    assert (
        client.post(f"{base}/terminate", headers=operator_headers).json()["status"] == "TERMINATED"
    )
    _problem(client.post(f"{base}/activate", headers=operator_headers), 410, "AGENT_TERMINATED")


def test_deposit_takes_amounts_as_strings_of_integers(
    client: TestClient, operator_headers: dict[str, str], agent: dict
) -> None:
    url = f"/v1/agents/{agent['id']}/deposit"
    assert client.post(url, json={"amount": "250"}, headers=operator_headers).json() == {
        "agent_id": agent["id"],
        "balance": "250",
    }
    assert (
        client.post(url, json={"amount": "50"}, headers=operator_headers).json()["balance"] == "300"
    )
    for bad in (250, "-1", "1.5", "0", "12345678901234567"):
        _problem(
            client.post(url, json={"amount": bad}, headers=operator_headers),
            400,
            "VALIDATION_ERROR",
        )


def _signature(
    client: TestClient, clock: ManualClock, action: str, signer: Ed25519PrivateKey = OWNER
) -> dict[str, str]:
    nonce = client.get("/v1/nonce").json()["nonce"]
    return {owners.HEADER: OwnerSigner(signer).header(action, nonce, clock.now())}


def test_owner_change_rules_over_http(
    client: TestClient, operator_headers: dict[str, str], agent: dict, clock: ManualClock
) -> None:
    url = f"/v1/agents/{agent['id']}"
    grace = client.patch(url, json={"owner_public_key": OWNER_KEY}, headers=operator_headers)
    assert grace.json()["owner"]["state"] == "GRACE"

    signed = {
        **operator_headers,
        **_signature(client, clock, owners.change_action(agent["id"], NEXT_KEY)),
    }
    locked = client.patch(url, json={"owner_public_key": NEXT_KEY}, headers=signed)
    assert locked.json()["owner"] == {"public_key": NEXT_KEY, "state": "LOCKED"}

    _problem(
        client.patch(url, json={"owner_public_key": None}, headers=operator_headers),
        403,
        "OWNER_LOCKED",
    )
    _problem(
        client.patch(url, json={"owner_public_key": OWNER_KEY}, headers=operator_headers),
        401,
        "OWNER_AUTH_REQUIRED",
    )
    replay = client.patch(url, json={"owner_public_key": NEXT_KEY}, headers=signed)
    _problem(replay, 401, "INVALID_NONCE")
    stranger = {
        **operator_headers,
        **_signature(client, clock, owners.change_action(agent["id"], OWNER_KEY), OWNER),
    }
    _problem(
        client.patch(url, json={"owner_public_key": OWNER_KEY}, headers=stranger),
        403,
        "OWNER_MISMATCH",
    )
