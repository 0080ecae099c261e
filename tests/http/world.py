"""One of each resource, made through the API: what the fuzzing tests aim at."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from racefree.client import OwnerSigner
from tests.http.test_transactions import make_agent, make_session, transfer

OWNER = Ed25519PrivateKey.generate()


@dataclass
class World:
    """Real path ids (agent, session, plan group, queued transaction, auto-stop rule,
    webhook) and both credentials."""

    ids: dict[str, str]
    operator: dict[str, str]
    session: dict[str, str]


def make_world(http: TestClient | httpx.Client, operator: dict[str, str]) -> World:
    agent_id = make_agent(http, operator, owner=OwnerSigner(OWNER).public_key)
    session = make_session(http, operator, agent_id)
    # The agent's own rules, made before it submits anything, replace the global ones a
    # server seeds at first start (SUSPEND_AGENT on 3 failures, 50 transactions an hour, a
    # daily sum): fuzzing makes many failed and refused submissions, and a suspended agent
    # would stop it reaching the logic. WARN keeps the rules' code on the path; every other
    # agent keeps the seeded ones.
    own_rules = [
        ("HOURLY_RATE", {"max_tx_per_hour": 1_000_000}),
        ("DAILY_LIMIT", {"daily_max": "1000000000000000"}),
        ("CONSECUTIVE_FAILURES", {"threshold": 3}),
    ]
    for rule_type, params in own_rules:
        rule = http.post(
            "/v1/auto-stop/rules",
            json={"type": rule_type, "params": params, "agent_id": agent_id, "action": "WARN"},
            headers=operator,
        )
        assert rule.status_code == 201, rule.text
    current = http.get("/v1/sessions/current", headers=session).json()
    group = http.post(
        "/v1/plan-groups",
        json={
            "title": "g",
            "start_date": "2026-01-01",
            "end_date": "2026-01-05",
            "items": [{"name": "a", "units": 3}],
        },
        headers=session,
    )
    queued = http.post("/v1/transactions", json=transfer(60_000), headers=session)
    assert group.status_code == 201 and queued.status_code == 202, (group.text, queued.text)
    hook = http.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["KILL_SWITCH_ACTIVATED"]},
        headers=operator,
    )
    assert hook.status_code == 201, hook.text
    # a second operator token: one the runs may revoke without losing their own
    spare = http.post("/v1/operators", json={"label": "spare"}, headers=operator)
    assert spare.status_code == 201, spare.text
    ids = {
        "agent_id": agent_id,
        "session_id": current["session_id"],
        "group_id": group.json()["id"],
        "transaction_id": queued.json()["transaction_id"],
        "rule_id": rule.json()["id"],
        "webhook_id": hook.json()["id"],
        "operator_id": spare.json()["id"],
    }
    return World(ids, operator, session)
