"""HTTP hygiene: HEAD, Allow, WWW-Authenticate, nosniff, Location, no-store, renew."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from racefree.core.clock import ManualClock
from tests.http.test_transactions import make_agent

#: Renewal is allowed once half of the default 24 h lifetime has passed.
PAST_HALF_A_DAY = 86400 // 2 + 1


def test_head_is_served_for_every_get_without_a_body(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    get = client.get("/health")
    head = client.head("/health")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert client.head("/v1/agents", headers=operator_headers).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        if "get" in operations and "{" not in path and path != "/v1/sessions/current":
            assert client.head(path, headers=operator_headers).status_code in (200, 503), path


def test_401_says_bearer_and_405_says_what_is_allowed(client: TestClient) -> None:
    unauthenticated = client.get("/v1/agents")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    assert unauthenticated.headers["x-content-type-options"] == "nosniff"
    wrong_method = client.delete("/health")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET")


def test_created_resources_say_where_they_are_and_secrets_are_not_cached(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    op = operator_headers
    agent = client.post("/v1/agents", json={"name": "a"}, headers=op)
    assert agent.headers["location"] == f"/v1/agents/{agent.json()['id']}"
    assert client.get(agent.headers["location"], headers=op).status_code == 200
    agent_id = make_agent(client, op)
    session = client.post("/v1/sessions", json={"agent_id": agent_id}, headers=op)
    assert session.headers["location"] == f"/v1/sessions/{session.json()['session_id']}"
    assert session.headers["cache-control"] == "no-store"
    group = client.post(
        "/v1/plan-groups",
        json={
            "title": "t",
            "start_date": "2026-01-01",
            "end_date": "2026-01-02",
            "items": [{"name": "x", "units": 1}],
        },
        headers=op,
    )
    assert group.headers["location"] == f"/v1/plan-groups/{group.json()['id']}"


def test_renew_is_a_post_and_put_is_a_deprecated_alias(
    client: TestClient, operator_headers: dict[str, str], clock: ManualClock
) -> None:
    op = operator_headers
    agent_id = make_agent(client, op)
    opened = client.post("/v1/sessions", json={"agent_id": agent_id}, headers=op).json()
    path = f"/v1/sessions/{opened['session_id']}/renew"
    clock.advance(PAST_HALF_A_DAY)
    renewed = client.post(path, headers={"Authorization": f"Bearer {opened['token']}"})
    assert renewed.status_code == 200, renewed.text
    assert renewed.headers["cache-control"] == "no-store"
    clock.advance(PAST_HALF_A_DAY)
    again = client.put(path, headers={"Authorization": f"Bearer {renewed.json()['token']}"})
    assert again.status_code == 200, again.text
    operations = client.get("/openapi.json").json()["paths"]["/v1/sessions/{session_id}/renew"]
    assert operations["put"]["deprecated"] is True
    assert not operations["post"].get("deprecated", False)


RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_one_time_format_and_amounts_as_strings_in_bodies_errors_and_audit(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    op = operator_headers
    agent = client.post("/v1/agents", json={"name": "a"}, headers=op).json()
    assert RFC3339_MS.match(agent["created_at"])
    client.post(f"/v1/agents/{agent['id']}/deposit", json={"amount": "700"}, headers=op)
    session = client.post(
        "/v1/sessions",
        json={"agent_id": agent["id"], "constraints": {"max_amount_per_tx": "100"}},
        headers=op,
    ).json()
    assert RFC3339_MS.match(session["expires_at"]) and isinstance(session["expires_at_epoch"], int)
    refused = client.post(
        "/v1/transactions",
        json={"type": "TRANSFER", "amount": "150", "destination": "acct:x"},
        headers={"Authorization": f"Bearer {session['token']}"},
    ).json()
    assert refused["code"] == "SESSION_LIMIT_EXCEEDED"
    assert {k: refused["details"][k] for k in ("max", "current", "requested")} == {
        "max": "100",
        "current": "150",
        "requested": "150",
    }
    entries = client.get("/v1/audit-log", headers=op).json()["entries"]
    (deposit,) = [e for e in entries if e["event_type"] == "AGENT_DEPOSIT"]
    assert deposit["details"] == {"amount": "700", "balance": "700"}
    assert RFC3339_MS.match(deposit["at"]) and isinstance(deposit["at_epoch"], int)


def test_an_after_id_beyond_64_bits_is_400_not_500(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    response = client.get(
        "/v1/audit-log?after_id=377841751190978012131622912", headers=operator_headers
    )
    assert (response.status_code, response.json()["code"]) == (400, "VALIDATION_ERROR")
