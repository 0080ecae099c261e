"""Idempotency-Key on every mutating request: one effect, replays, scope, TTL."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from racefree import operators
from racefree.core import idempotency
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.runtime import Runtime
from racefree.testing import Server, http_race
from tests.http.test_transactions import make_agent

Client = TestClient | httpx.Client


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def _count(db: Database, sql: str) -> int:
    with db.read() as tx:
        return int(tx.scalar(sql))


def _twice(client: Client, method: str, path: str, headers: dict[str, str], body: Any) -> list[Any]:
    return [client.request(method, path, json=body, headers=headers) for _ in range(2)]


def test_each_mutation_sent_twice_with_one_key_has_one_effect_and_a_replay(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    op = operator_headers
    first, again = _twice(client, "POST", "/v1/agents", keyed(op, "agent-1"), {"name": "a"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count(db, "SELECT COUNT(*) FROM agents") == 1
    agent_id = first.json()["id"]

    deposit = _twice(
        client, "POST", f"/v1/agents/{agent_id}/deposit", keyed(op, "dep-1"), {"amount": "700"}
    )
    assert [r.status_code for r in deposit] == [200, 200]
    assert deposit[1].headers["idempotent-replayed"] == "true"
    assert client.get(f"/v1/agents/{agent_id}", headers=op).json()["balance"] == "700"

    opened = _twice(client, "POST", "/v1/sessions", keyed(op, "sess-1"), {"agent_id": agent_id})
    assert [r.status_code for r in opened] == [201, 201]
    assert opened[1].json()["token"] == opened[0].json()["token"]  # the client can use it
    assert _count(db, "SELECT COUNT(*) FROM sessions") == 1
    token = opened[0].json()["token"].encode()
    with db.read() as tx:
        bodies = [bytes(r["response_body"]) for r in tx.all("SELECT * FROM idempotency_keys")]
    assert bodies and not any(token in b for b in bodies)  # sealed, never stored readable

    activated = _twice(
        client, "POST", "/v1/kill-switch/activate", keyed(op, "kill-1"), {"reason": "drill"}
    )
    assert [r.status_code for r in activated] == [200, 200]  # without the key: 409 the 2nd
    assert activated[1].json() == activated[0].json()
    assert activated[1].headers["idempotent-replayed"] == "true"
    assert (
        _count(db, "SELECT COUNT(*) FROM audit_log WHERE event_type = 'KILL_SWITCH_ACTIVATED'") == 1
    )


def test_a_key_reused_for_another_request_is_422_and_keys_are_per_credential(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    op = keyed(operator_headers, "k")
    assert client.post("/v1/agents", json={"name": "a"}, headers=op).status_code == 201
    other_body = client.post("/v1/agents", json={"name": "b"}, headers=op)
    assert (other_body.status_code, other_body.json()["code"]) == (422, "IDEMPOTENCY_KEY_MISMATCH")
    # the same body with other spacing and key order is the same request
    same = client.post(
        "/v1/agents",
        content=b'{ "name" : "a" }',
        headers={**op, "Content-Type": "application/json"},
    )
    assert same.headers["idempotent-replayed"] == "true"
    with db.write() as tx:
        second = operators.create_token(tx, label="second", now=clock.now())
    theirs = client.post(
        "/v1/agents",
        json={"name": "a"},
        headers={"Authorization": f"Bearer {second}", "Idempotency-Key": "k"},
    )
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert _count(db, "SELECT COUNT(*) FROM agents") == 2


@pytest.mark.parametrize(
    "value",
    ['""', "x" * 256, "caf\xe9", "a\x7fb", "tab\there"],
    ids=["empty", "long", "latin1", "del", "tab"],
)
def test_invalid_keys_are_400_and_change_nothing(
    client: TestClient, operator_headers: dict[str, str], db: Database, value: str
) -> None:
    response = client.post(
        "/v1/agents",
        json={"name": "a"},
        headers={**operator_headers, "Idempotency-Key": value.encode("latin-1")},  # type: ignore[dict-item]
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert response.json()["details"]["issues"][0]["loc"] == ["header", "Idempotency-Key"]
    assert _count(db, "SELECT COUNT(*) FROM agents") == 0


def test_errors_worth_retrying_free_the_key(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    nobody = {"Authorization": "Bearer rf_op_wrong", "Idempotency-Key": "retry-me"}
    assert client.post("/v1/agents", json={"name": "a"}, headers=nobody).status_code == 401
    assert client.post("/v1/agents", json={"name": "a"}, headers=nobody).status_code == 401
    missing = keyed(operator_headers, "404-stays")
    gone = client.post("/v1/agents/nope/suspend", headers=missing)
    replay = client.post("/v1/agents/nope/suspend", headers=missing)
    assert gone.status_code == replay.status_code  # a definitive answer is replayed
    assert replay.headers["idempotent-replayed"] == "true"


def test_keys_expire_after_the_ttl_and_the_sweep_deletes_them(
    client: TestClient,
    operator_headers: dict[str, str],
    db: Database,
    clock: ManualClock,
    runtime: Runtime,
) -> None:
    op = keyed(operator_headers, "ttl")
    assert client.post("/v1/agents", json={"name": "a"}, headers=op).status_code == 201
    clock.advance(runtime.settings.idempotency_ttl_s)
    again = client.post("/v1/agents", json={"name": "a"}, headers=op)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers  # new run
    clock.advance(runtime.settings.idempotency_ttl_s)
    with db.write() as tx:
        assert idempotency.sweep(tx, now=clock.now()) == 1
    assert _count(db, "SELECT COUNT(*) FROM idempotency_keys") == 0


@pytest.mark.server
def test_twenty_concurrent_copies_have_one_effect_on_a_real_server(server: Server) -> None:
    op = server.operator_headers()
    url = server.base_url

    def race(path: str, key: str, body: Any) -> Counter[str]:
        responses = http_race(20, url, "POST", path, headers=keyed(op, key), json=body)
        outcomes: Counter[str] = Counter()
        for r in responses:
            if r.status_code < 300:
                outcomes["replayed" if r.headers.get("idempotent-replayed") else "ran"] += 1
            else:
                assert (r.status_code, r.json()["code"]) == (409, "IDEMPOTENCY_KEY_IN_USE")
                assert r.headers["retry-after"] == "1"
                outcomes["in_use"] += 1
        assert outcomes["ran"] == 1, outcomes
        return outcomes

    race("/v1/agents", "race-agent", {"name": "raced"})
    with server.client() as http:
        agents = http.get("/v1/agents", headers=op).json()
        assert [a["name"] for a in agents["agents"]].count("raced") == 1
        agent_id = make_agent(http, op, balance=0)
    race(f"/v1/agents/{agent_id}/deposit", "race-dep", {"amount": "100"})
    race("/v1/sessions", "race-sess", {"agent_id": agent_id})
    race("/v1/kill-switch/activate", "race-kill", {"reason": "raced"})
    with server.client() as http:
        assert http.get(f"/v1/agents/{agent_id}", headers=op).json()["balance"] == "100"
        sessions = http.get(f"/v1/sessions?agent_id={agent_id}", headers=op).json()
        assert len(sessions["sessions"]) == 1
        assert http.get("/v1/kill-switch", headers=op).json()["state"] == "ACTIVATED"
