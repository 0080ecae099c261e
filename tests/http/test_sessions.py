"""HTTP /v1/sessions: open, read, revoke, current, renew; the renewal race on a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from racefree.core.clock import ManualClock
from racefree.testing import Server, http_race, start_server

PROBLEM = "application/problem+json"
SESSION_FIELDS = {
    "session_id",
    "agent_id",
    "expires_at",
    "absolute_expires_at",
    "renewal_count",
    "max_renewals",
    "revoked_at",
    "revoke_reason",
}


def _problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _agent(client: TestClient | httpx.Client, headers: dict[str, str]) -> str:
    response = client.post("/v1/agents", json={"name": "bot"}, headers=headers)
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


def _open(
    client: TestClient | httpx.Client, headers: dict[str, str], agent_id: str, **body: object
) -> dict:
    response = client.post("/v1/sessions", json={"agent_id": agent_id, **body}, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


@pytest.fixture
def agent_id(client: TestClient, operator_headers: dict[str, str]) -> str:
    return _agent(client, operator_headers)


def test_open_returns_the_token_once_and_reads_never_show_it(
    client: TestClient, operator_headers: dict[str, str], agent_id: str
) -> None:
    opened = _open(
        client,
        operator_headers,
        agent_id,
        expires_in=600,
        max_renewals=2,
        constraints={"max_amount_per_tx": "100", "max_transactions": 5},
    )
    assert opened["token"].startswith("rf_sess_")
    assert set(opened) >= SESSION_FIELDS
    assert (opened["renewal_count"], opened["max_renewals"], opened["expires_in"]) == (0, 2, 600)
    assert opened["constraints"] == {
        "max_amount_per_tx": "100",
        "max_total_amount": None,
        "max_transactions": 5,
    }
    read = client.get(f"/v1/sessions/{opened['session_id']}", headers=operator_headers)
    listed = client.get("/v1/sessions", params={"agent_id": agent_id}, headers=operator_headers)
    current = client.get("/v1/sessions/current", headers=_bearer(opened["token"]))
    for response in (read, listed, current):
        assert response.status_code == 200
        assert opened["token"] not in response.text
        assert "token_hash" not in response.text
    assert read.json() == current.json() == {k: v for k, v in opened.items() if k != "token"}
    assert [s["session_id"] for s in listed.json()["sessions"]] == [opened["session_id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": 0},
        {"expires_in": "60"},
        {"max_renewals": -1},
        {"constraints": {"max_total_amount": 5}},
        {"constraints": {"max_total_amount": "-5"}},
        {"constraints": {"max_transactions": -1}},
        {"constraints": {"other": "1"}},
        {"expires_in": 10**9},
    ],
    ids=[
        "zero-expiry",
        "string-expiry",
        "negative-renewals",
        "amount-not-string",
        "negative-amount",
        "negative-count",
        "unknown-constraint",
        "beyond-absolute",
    ],
)
def test_bad_session_bodies_are_validation_errors(
    client: TestClient, operator_headers: dict[str, str], agent_id: str, body: dict
) -> None:
    response = client.post(
        "/v1/sessions", json={"agent_id": agent_id, **body}, headers=operator_headers
    )
    _problem(response, 400, "VALIDATION_ERROR")


def test_suspended_terminated_and_missing_agents_cannot_open_sessions(
    client: TestClient, operator_headers: dict[str, str], agent_id: str
) -> None:
    client.post(f"/v1/agents/{agent_id}/suspend", headers=operator_headers)
    body = {"agent_id": agent_id}
    _problem(
        client.post("/v1/sessions", json=body, headers=operator_headers), 409, "AGENT_SUSPENDED"
    )
    client.post(f"/v1/agents/{agent_id}/terminate", headers=operator_headers)
    _problem(
        client.post("/v1/sessions", json=body, headers=operator_headers), 410, "AGENT_TERMINATED"
    )
    _problem(
        client.post("/v1/sessions", json={"agent_id": "nope"}, headers=operator_headers),
        404,
        "AGENT_NOT_FOUND",
    )


def test_revoke_is_a_cas_with_classified_misses(
    client: TestClient, operator_headers: dict[str, str], agent_id: str
) -> None:
    opened = _open(client, operator_headers, agent_id)
    url = f"/v1/sessions/{opened['session_id']}"
    revoked = client.delete(url, headers=operator_headers)
    assert revoked.status_code == 200
    assert set(revoked.json()) >= {"session_id", "revoked_at"}
    _problem(client.delete(url, headers=operator_headers), 409, "SESSION_ALREADY_REVOKED")
    _problem(client.delete("/v1/sessions/nope", headers=operator_headers), 404, "SESSION_NOT_FOUND")
    _problem(
        client.get("/v1/sessions/current", headers=_bearer(opened["token"])), 401, "SESSION_REVOKED"
    )


def test_session_auth_failures_have_their_codes(
    client: TestClient, operator_headers: dict[str, str], agent_id: str, clock: ManualClock
) -> None:
    _problem(client.get("/v1/sessions/current"), 401, "AUTH_REQUIRED")
    _problem(
        client.get("/v1/sessions/current", headers=_bearer("rf_sess_nope")), 401, "INVALID_TOKEN"
    )
    opened = _open(client, operator_headers, agent_id, expires_in=60)
    clock.advance(60)
    _problem(
        client.get("/v1/sessions/current", headers=_bearer(opened["token"])), 401, "TOKEN_EXPIRED"
    )


def test_renewal_over_http_with_its_guards(
    client: TestClient, operator_headers: dict[str, str], agent_id: str, clock: ManualClock
) -> None:
    opened = _open(client, operator_headers, agent_id, expires_in=100, max_renewals=1)
    url = f"/v1/sessions/{opened['session_id']}/renew"
    early = _problem(client.put(url, headers=_bearer(opened["token"])), 403, "RENEWAL_TOO_EARLY")
    assert early["retryable"] is True
    clock.advance(50)
    renewed = client.put(url, headers=_bearer(opened["token"]))
    assert renewed.status_code == 200
    assert renewed.headers["cache-control"] == "no-store"
    body = renewed.json()
    assert {
        "session_id",
        "token",
        "expires_at",
        "absolute_expires_at",
        "renewal_count",
        "max_renewals",
    } <= set(body)
    assert body["renewal_count"] == 1 and body["token"] != opened["token"]
    clock.advance(50)
    _problem(client.put(url, headers=_bearer(body["token"])), 403, "RENEWAL_LIMIT_REACHED")
    other = _open(client, operator_headers, agent_id)
    _problem(client.put(url, headers=_bearer(other["token"])), 403, "SESSION_RENEWAL_MISMATCH")
    _problem(
        client.put("/v1/sessions/nope/renew", headers=_bearer(other["token"])),
        404,
        "SESSION_NOT_FOUND",
    )
    _problem(client.put(url), 401, "AUTH_REQUIRED")


def test_a_too_early_renewal_says_when_to_retry(
    client: TestClient, operator_headers: dict[str, str], agent_id: str, clock: ManualClock
) -> None:
    opened = _open(client, operator_headers, agent_id, expires_in=100)
    clock.advance(40)
    response = client.put(
        f"/v1/sessions/{opened['session_id']}/renew", headers=_bearer(opened["token"])
    )
    _problem(response, 403, "RENEWAL_TOO_EARLY")
    assert response.headers["retry-after"] == "10"


def test_reusing_a_rotated_out_token_revokes_the_session(
    client: TestClient, operator_headers: dict[str, str], agent_id: str, clock: ManualClock
) -> None:
    opened = _open(client, operator_headers, agent_id, expires_in=100)
    clock.advance(50)
    url = f"/v1/sessions/{opened['session_id']}/renew"
    new_token = client.put(url, headers=_bearer(opened["token"])).json()["token"]
    clock.advance(10)
    _problem(
        client.get("/v1/sessions/current", headers=_bearer(opened["token"])), 401, "TOKEN_REUSED"
    )
    _problem(client.get("/v1/sessions/current", headers=_bearer(new_token)), 401, "SESSION_REVOKED")
    audit = client.get(
        "/v1/audit-log", params={"event_type": "SESSION_TOKEN_REUSED"}, headers=operator_headers
    ).json()["entries"]
    assert [(e["session_id"], e["severity"]) for e in audit] == [(opened["session_id"], "critical")]


# -- the renewal race through a real server process ---------------------------------------------


def _race_renewals(server: Server, n: int = 20) -> tuple[dict, list[httpx.Response]]:
    with server.client() as c:
        agent_id = _agent(c, server.operator_headers())
        opened = _open(c, server.operator_headers(), agent_id)
    responses = http_race(
        n,
        server.base_url,
        "PUT",
        f"/v1/sessions/{opened['session_id']}/renew",
        headers=_bearer(opened["token"]),
    )
    return opened, responses


def _after_race(server: Server, opened: dict, winner_token: str) -> None:
    with server.client() as c:
        current = c.get("/v1/sessions/current", headers=_bearer(winner_token))
        assert current.status_code == 200
        assert current.json()["renewal_count"] == 1
        assert c.get("/v1/sessions/current", headers=_bearer(opened["token"])).status_code == 401
        audit = c.get(
            "/v1/audit-log",
            params={"event_type": "SESSION_RENEWED"},
            headers=server.operator_headers(),
        ).json()["entries"]
        assert len(audit) == 1


@pytest.mark.server
def test_twenty_renewals_through_a_real_server_have_exactly_one_winner(
    renewable_server: Server,
) -> None:
    opened, responses = _race_renewals(renewable_server)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19
    losers = [r.json() for r in responses if r.status_code == 409]
    assert {(b["code"], b["domain"], b["retryable"]) for b in losers} == {
        ("RENEWAL_CONFLICT", "SESSION", False)
    }
    assert all(b["hint"] for b in losers)
    [winner] = [r.json() for r in responses if r.status_code == 200]
    _after_race(renewable_server, opened, winner["token"])


@pytest.mark.server
def test_with_a_grace_window_twenty_racing_renewals_all_get_one_token(
    db_url: str, tmp_path: Path
) -> None:
    server = start_server(
        db_url,
        tmp_path,
        env={"RACEFREE_SESSION_RENEWAL_GRACE_S": "30", "RACEFREE_SESSION_RENEWAL_MIN_ELAPSED": "0"},
    )
    try:
        opened, responses = _race_renewals(server)
        assert [r.status_code for r in responses] == [200] * 20
        tokens = {r.json()["token"] for r in responses}
        assert len(tokens) == 1
        assert {r.json()["renewal_count"] for r in responses} == {1}
        _after_race(server, opened, tokens.pop())
    finally:
        server.stop()


@pytest.mark.server
def test_the_default_server_refuses_an_immediate_renewal(server: Server) -> None:
    with server.client() as c:
        agent_id = _agent(c, server.operator_headers())
        opened = _open(c, server.operator_headers(), agent_id)
        response = c.put(
            f"/v1/sessions/{opened['session_id']}/renew", headers=_bearer(opened["token"])
        )
    _problem(response, 403, "RENEWAL_TOO_EARLY")
    assert int(response.headers["retry-after"]) > 0


def test_openapi_documents_every_error_of_the_session_and_agent_routes(
    client: TestClient,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def codes(path: str, method: str, status: str) -> set[str]:
        content = paths[path][method]["responses"][status]["content"]
        return set(content[PROBLEM]["examples"])

    renew = "/v1/sessions/{session_id}/renew"
    assert {
        "FORBIDDEN",
        "RENEWAL_LIMIT_REACHED",
        "SESSION_ABSOLUTE_LIFETIME_EXCEEDED",
        "SESSION_RENEWAL_MISMATCH",
        "RENEWAL_TOO_EARLY",
    } <= codes(renew, "put", "403")
    assert {"RENEWAL_CONFLICT", "AGENT_SUSPENDED"} <= codes(renew, "put", "409")
    assert {"AUTH_REQUIRED", "TOKEN_REUSED", "TOKEN_EXPIRED"} <= codes(renew, "put", "401")
    patch = "/v1/agents/{agent_id}"
    assert {"AUTH_REQUIRED", "OWNER_AUTH_REQUIRED", "INVALID_NONCE"} <= codes(patch, "patch", "401")
    assert {"FORBIDDEN", "OWNER_LOCKED", "OWNER_MISMATCH"} <= codes(patch, "patch", "403")
