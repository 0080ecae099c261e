"""Issue 12's resources under issue 15's contract: auto-stop rules and webhooks answer
ETags, take If-Match into their CAS (412; 428 when required) and Idempotency-Key like
every other mutation (DESIGN 10)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree.core.db import Database
from racefree.runtime import Runtime
from racefree.testing import http_race, start_server
from tests.http.test_transactions import make_agent

HOOK = {"url": "http://127.0.0.1:9/hook", "event_types": ["KILL_SWITCH_ACTIVATED"]}


@pytest.fixture
def runtime_with_hooks(runtime: Runtime) -> Runtime:
    runtime.settings = runtime.settings.model_copy(update={"webhook_allowed_hosts": "127.0.0.1"})
    return runtime


def _rule(agent_id: str, limit: int = 5) -> dict[str, Any]:
    return {"type": "HOURLY_RATE", "params": {"max_tx_per_hour": limit}, "agent_id": agent_id}


def _count(db: Database, sql: str) -> int:
    with db.read() as tx:
        return int(tx.scalar(sql))


def test_rules_and_webhooks_need_if_match_when_required(
    client: TestClient, operator_headers: dict[str, str], runtime_with_hooks: Runtime
) -> None:
    op = operator_headers
    agent_id = make_agent(client, op, balance=0)
    rule = client.post("/v1/auto-stop/rules", json=_rule(agent_id), headers=op)
    hook = client.post("/v1/webhooks", json=HOOK, headers=op)
    assert (rule.status_code, hook.status_code) == (201, 201)
    runtime_with_hooks.settings = runtime_with_hooks.settings.model_copy(
        update={"require_if_match": True}
    )
    for path, etag in (
        (f"/v1/auto-stop/rules/{rule.json()['id']}", rule.headers["etag"]),
        (f"/v1/webhooks/{hook.json()['id']}", hook.headers["etag"]),
    ):
        patch = {"enabled": False} if "rules" in path else {"status": "DISABLED"}
        for method, body in (("PATCH", patch), ("DELETE", None)):
            refused = client.request(method, path, json=body, headers=op)
            assert (refused.status_code, refused.json()["code"]) == (428, "PRECONDITION_REQUIRED")
        changed = client.patch(path, json=patch, headers={**op, "If-Match": etag})
        assert changed.status_code == 200, changed.text
        stale = client.delete(path, headers={**op, "If-Match": etag})
        assert (stale.status_code, stale.json()["details"]["current_etag"]) == (
            412,
            changed.headers["etag"],
        )
        assert client.get(path, headers=op).status_code == 200  # nothing deleted
        gone = client.delete(path, headers={**op, "If-Match": "*"})
        assert gone.status_code == 200
    document = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/auto-stop/rules/{rule_id}", "/v1/webhooks/{webhook_id}"):
        for method in ("patch", "delete"):
            responses = document[path][method]["responses"]
            assert {"409", "412", "422", "428"} <= set(responses), (path, method)
            names = {p["name"] for p in document[path][method]["parameters"]}
            assert {"If-Match", "Idempotency-Key"} <= names


def test_rule_and_webhook_changes_sent_twice_with_one_key_have_one_effect(
    client: TestClient,
    operator_headers: dict[str, str],
    runtime_with_hooks: Runtime,
    db: Database,
) -> None:
    op = operator_headers
    agent_id = make_agent(client, op, balance=0)
    keyed = {**op, "Idempotency-Key": "rule-1"}
    first, again = (
        client.post("/v1/auto-stop/rules", json=_rule(agent_id), headers=keyed) for _ in range(2)
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert _count(db, "SELECT COUNT(*) FROM audit_log WHERE event_type = 'AUTO_STOP_RULE_SET'") == 1

    keyed = {**op, "Idempotency-Key": "hook-1"}
    made, remade = (client.post("/v1/webhooks", json=HOOK, headers=keyed) for _ in range(2))
    assert (made.status_code, remade.status_code) == (201, 201)
    assert remade.json()["secret"] == made.json()["secret"]  # shown again to its own client
    assert remade.headers["cache-control"] == "no-store"
    assert _count(db, "SELECT COUNT(*) FROM webhooks") == 1
    with db.read() as tx:
        stored = [bytes(r["response_body"]) for r in tx.all("SELECT * FROM idempotency_keys")]
    assert not any(made.json()["secret"].encode() in b for b in stored)

    hook_path = f"/v1/webhooks/{made.json()['id']}"
    keyed = {**op, "Idempotency-Key": "hook-del"}
    deleted, redeleted = (client.delete(hook_path, headers=keyed) for _ in range(2))
    assert (deleted.status_code, redeleted.status_code) == (200, 200)
    assert redeleted.headers["idempotent-replayed"] == "true"
    other = client.delete(hook_path, headers={**op, "Idempotency-Key": "hook-del-2"})
    assert (other.status_code, other.json()["code"]) == (404, "WEBHOOK_NOT_FOUND")


@pytest.mark.server
def test_ten_concurrent_rule_and_webhook_patches_with_one_if_match_have_one_winner(
    db_url: str, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path, env={"RACEFREE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"})
    try:
        op = server.operator_headers()
        with server.client() as http:
            agent_id = make_agent(http, op, balance=0)
            rule = http.post("/v1/auto-stop/rules", json=_rule(agent_id), headers=op)
            hook = http.post("/v1/webhooks", json=HOOK, headers=op)
        for path, etag, body in (
            (f"/v1/auto-stop/rules/{rule.json()['id']}", rule.headers["etag"], {"enabled": False}),
            (f"/v1/webhooks/{hook.json()['id']}", hook.headers["etag"], {"status": "DISABLED"}),
        ):
            responses = http_race(
                10, server.base_url, "PATCH", path, headers={**op, "If-Match": etag}, json=body
            )
            assert Counter(r.status_code for r in responses) == {200: 1, 412: 9}, path
            (winner,) = [r for r in responses if r.status_code == 200]
            assert {
                r.json()["details"]["current_etag"] for r in responses if r.status_code == 412
            } == {winner.headers["etag"]}
        # twenty copies of one creation with one key: one rule, one webhook
        for path, body in (("/v1/auto-stop/rules", _rule(agent_id, 7)), ("/v1/webhooks", HOOK)):
            responses = http_race(
                20,
                server.base_url,
                "POST",
                path,
                headers={**op, "Idempotency-Key": path},
                json=body,
            )
            ran = [
                r
                for r in responses
                if r.status_code < 300 and "idempotent-replayed" not in r.headers
            ]
            assert len(ran) == 1, [r.status_code for r in responses]
            assert all(
                r.status_code < 300 or r.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
                for r in responses
            )
        with server.client() as http:
            hooks = http.get("/v1/webhooks", headers=op).json()["webhooks"]
            rules = http.get(f"/v1/auto-stop/rules?agent_id={agent_id}", headers=op).json()
        assert len(hooks) == 2
        assert [r["params"]["max_tx_per_hour"] for r in rules["rules"]] == [7]
    finally:
        server.stop()
