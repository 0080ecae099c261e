"""/v1/kill-switch and the guard, through the real app and through real server processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from racefree import killswitch, operators, owners
from racefree.client import OwnerSigner
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.killswitch import recovery
from racefree.testing import Server, http_race, race, start_server
from tests import factory

PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"


@pytest.fixture
def master(db: Database, clock: ManualClock, operator_headers: dict[str, str]) -> dict[str, str]:
    """Recovery credentials: an operator token and the master password (docs/operations.md)."""
    operators.bootstrap(db, master_password=PASSWORD, now=clock.now())
    return {**operator_headers, "X-Master-Password": PASSWORD}


def _activate(client: TestClient, headers: dict[str, str], reason: str = "drill") -> Any:
    return client.post("/v1/kill-switch/activate", json={"reason": reason}, headers=headers)


def _code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == PROBLEM, response.text
    code: str = response.json()["code"]
    return code


def _events(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type=event_type, limit=1000)


def _count(db: Database, sql: str) -> int:
    with db.read() as tx:
        return int(tx.scalar(sql))


# -- routes ----------------------------------------------------------------------


def test_status_is_for_operators_and_starts_normal(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    assert _code(client.get("/v1/kill-switch")) == "AUTH_REQUIRED"
    body = client.get("/v1/kill-switch", headers=operator_headers).json()
    assert body["state"] == "NORMAL"
    assert (body["version"], body["activation_id"], body["activated_at"]) == (0, None, None)


def test_activation_answers_with_the_counts_and_a_second_press_is_409(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    w = factory.world(db, now=clock.now())
    response = _activate(client, operator_headers, reason="agent went rogue")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "ACTIVATED"
    assert body["sessions_revoked"] == len(w.live_sessions)
    assert body["transactions_cancelled"] == len(w.open_transactions)
    assert body["agents_suspended"] == len(w.active_agents)
    assert body["activated_at_epoch"] == clock.now()

    again = _activate(client, operator_headers)
    assert (again.status_code, _code(again)) == (409, "KILL_SWITCH_ALREADY_ACTIVE")
    status = client.get("/v1/kill-switch", headers=operator_headers).json()
    assert (status["state"], status["reason"]) == ("ACTIVATED", "agent went rogue")
    assert status["actor"] == "operator:test"
    assert status["activation_id"] == body["activation_id"]


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": 5}, {"reason": "x", "y": 1}])
def test_activation_with_a_bad_body_is_400(
    client: TestClient, operator_headers: dict[str, str], payload: dict[str, Any]
) -> None:
    response = client.post("/v1/kill-switch/activate", json=payload, headers=operator_headers)
    assert (response.status_code, _code(response)) == (400, "VALIDATION_ERROR")


def test_activation_needs_an_operator(client: TestClient) -> None:
    assert _code(client.post("/v1/kill-switch/activate", json={"reason": "x"})) == "AUTH_REQUIRED"


# -- the guard -------------------------------------------------------------------


def test_while_normal_the_guard_lets_everything_through(client: TestClient) -> None:
    # the request reaches authentication: the guard stepped aside
    assert _code(client.post("/v1/agents", json={"name": "a"})) == "AUTH_REQUIRED"


def test_while_locked_requests_outside_the_allow_list_get_503_before_auth(
    client: TestClient, operator_headers: dict[str, str], clock: ManualClock
) -> None:
    _activate(client, operator_headers, reason="stop")
    for method, path, headers in [
        ("POST", "/v1/no-such-route", {}),  # the guard answers before routing
        ("POST", "/v1/agents", {"Authorization": "Bearer nonsense"}),  # and before auth
        ("GET", "/v1/sessions/current", {"Authorization": "Bearer rf_sess_whatever"}),
        ("GET", "/v1/audit-log", {}),  # an operator route without a token: 503, not 401
        ("GET", "/v1/nonce", {}),
        ("POST", "/v1/audit-log", operator_headers),  # operators may only read
        ("GET", "/v1/audit-log", {"Authorization": "Bearer rf_op_forged"}),
    ]:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 503, (method, path)
        problem = response.json()
        assert problem["code"] == "SYSTEM_LOCKED"
        assert problem["details"]["state"] == "ACTIVATED"
        assert problem["details"]["reason"] == "stop"
        assert problem["details"]["activated_at_epoch"] == clock.now()
        assert response.headers["x-request-id"] == problem["request_id"]


def test_while_locked_the_allow_list_is_served(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    _activate(client, operator_headers)
    health = client.get("/health")
    assert (health.status_code, health.json()["kill_switch"]) == (200, {"state": "ACTIVATED"})
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/audit-log", headers=operator_headers).status_code == 200
    assert client.get("/v1/kill-switch", headers=operator_headers).status_code == 200
    assert client.get("/v1/kill-switch/nonce").status_code == 200


def test_a_forged_operator_token_with_a_valid_shape_is_refused(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        other = operators.create_token(tx, label="other", now=clock.now())
        tx.execute("DELETE FROM operators WHERE label = 'other'")
    _activate(client, operator_headers)
    response = client.get("/v1/audit-log", headers={"Authorization": f"Bearer {other}"})
    assert _code(response) == "SYSTEM_LOCKED"


# -- recovery --------------------------------------------------------------------


def test_recovery_over_http_waits_and_then_unlocks(
    client: TestClient,
    operator_headers: dict[str, str],
    master: dict[str, str],
    clock: ManualClock,
    runtime: Any,
) -> None:
    _activate(client, operator_headers)
    assert _code(client.post("/v1/kill-switch/recovery")) == "AUTH_REQUIRED"
    wrong = client.post(
        "/v1/kill-switch/recovery", headers={**operator_headers, "X-Master-Password": "nope"}
    )
    assert (wrong.status_code, _code(wrong)) == (401, "INVALID_MASTER_PASSWORD")

    started = client.post("/v1/kill-switch/recovery", headers=master)
    assert started.status_code == 202
    wait = runtime.settings.recovery_wait_s
    assert started.json()["state"] == "RECOVERING"
    assert started.json()["wait_seconds"] == wait
    assert started.json()["recovery_eligible_at_epoch"] == clock.now() + wait
    assert _code(client.post("/v1/agents")) == "SYSTEM_LOCKED"  # still locked while recovering

    early = client.post("/v1/kill-switch/recovery/complete", headers=master)
    assert (early.status_code, _code(early)) == (409, "RECOVERY_WAIT_REQUIRED")
    assert early.headers["retry-after"] == str(wait)
    assert early.json()["retryable"] is True

    clock.advance(wait)
    done = client.post("/v1/kill-switch/recovery/complete", headers=master)
    assert done.status_code == 200
    assert done.json() == {"state": "NORMAL", "agents_reactivated": 0}
    assert _code(client.post("/v1/agents")) == "AUTH_REQUIRED"  # the guard stepped aside


def test_abort_and_wrong_state_codes_over_http(
    client: TestClient, operator_headers: dict[str, str], master: dict[str, str]
) -> None:
    not_active = client.post("/v1/kill-switch/recovery", headers=master)
    assert (not_active.status_code, _code(not_active)) == (409, "KILL_SWITCH_NOT_ACTIVE")
    _activate(client, operator_headers)
    bad_abort = client.post("/v1/kill-switch/recovery/abort", headers=master)
    assert (bad_abort.status_code, _code(bad_abort)) == (409, "INVALID_RECOVERY_STATE")
    assert client.post("/v1/kill-switch/recovery", headers=master).status_code == 202
    twice = client.post("/v1/kill-switch/recovery", headers=master)
    assert _code(twice) == "RECOVERY_ALREADY_STARTED"
    aborted = client.post("/v1/kill-switch/recovery/abort", headers=master)
    assert (aborted.status_code, aborted.json()) == (200, {"state": "ACTIVATED"})


def test_five_wrong_passwords_give_429_with_retry_after(
    client: TestClient, operator_headers: dict[str, str], master: dict[str, str]
) -> None:
    _activate(client, operator_headers)
    bad = {**operator_headers, "X-Master-Password": "wrong"}
    statuses = [client.post("/v1/kill-switch/recovery", headers=bad).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    locked = client.post("/v1/kill-switch/recovery", headers=master)
    assert (locked.status_code, _code(locked)) == (429, "MASTER_PASSWORD_LOCKED")
    assert locked.headers["retry-after"] == "1800"


def test_recovery_with_an_owner_takes_a_signature_over_a_kill_switch_nonce(
    client: TestClient,
    operator_headers: dict[str, str],
    master: dict[str, str],
    db: Database,
    clock: ManualClock,
    runtime: Any,
) -> None:
    key = Ed25519PrivateKey.generate()
    with db.write() as tx:
        factory.agent(tx, owner=OwnerSigner(key).public_key, now=clock.now())
        tx.execute("UPDATE agents SET owner_verified = 1")  # a LOCKED owner gates recovery
    _activate(client, operator_headers)
    missing = client.post("/v1/kill-switch/recovery", headers=master)
    assert (missing.status_code, _code(missing)) == (401, "OWNER_AUTH_REQUIRED")
    nonce = client.get("/v1/kill-switch/nonce").json()["nonce"]
    signature = OwnerSigner(key).header(recovery.OWNER_ACTION, nonce, clock.now())
    started = client.post("/v1/kill-switch/recovery", headers={**master, owners.HEADER: signature})
    assert started.status_code == 202
    assert started.json()["wait_seconds"] == runtime.settings.recovery_wait_owner_s


def test_openapi_documents_the_kill_switch_errors_and_the_guard(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    recovery_doc = paths["/v1/kill-switch/recovery"]["post"]["responses"]
    assert {"202", "401", "403", "409", "429"} <= set(recovery_doc)
    assert "RECOVERY_ALREADY_STARTED" in recovery_doc["409"]["description"]
    assert (
        "RECOVERY_WAIT_REQUIRED"
        in (paths["/v1/kill-switch/recovery/complete"]["post"]["responses"]["409"]["description"])
    )
    assert "SYSTEM_LOCKED" in paths["/v1/audit-log"]["get"]["responses"]["503"]["description"]
    # the guard never refuses /health (its own 503 says the database is gone)
    health_503 = paths["/health"]["get"]["responses"]["503"]
    assert "SYSTEM_LOCKED" not in json.dumps(health_503)
    for probe in ("/livez", "/readyz"):
        assert "SYSTEM_LOCKED" not in json.dumps(paths[probe]["get"]["responses"])


# -- real server processes ---------------------------------------------------------


@pytest.mark.server
def test_twenty_racing_activations_against_a_real_server_have_one_winner(
    server: Server, db: Database, clock: ManualClock
) -> None:
    w = factory.world(db, agents=4, now=clock.now())
    responses = http_race(
        20,
        server.base_url,
        "POST",
        "/v1/kill-switch/activate",
        headers=server.operator_headers(),
        json={"reason": "race"},
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "KILL_SWITCH_ALREADY_ACTIVE"
    }
    assert len(_events(db, "KILL_SWITCH_ACTIVATED")) == 1
    assert _count(db, "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL") == 0
    assert (
        _count(
            db,
            "SELECT COUNT(*) FROM transactions WHERE status IN ('PENDING', 'QUEUED', 'EXECUTING')",
        )
        == 0
    )
    [winner] = [r.json() for r in responses if r.status_code == 200]
    assert winner["sessions_revoked"] == len(w.live_sessions)


@pytest.mark.server
def test_a_server_started_while_activated_serves_only_the_allow_list(
    db_url: str, tmp_path: Path, db: Database, clock: ManualClock
) -> None:
    first = start_server(db_url, tmp_path, env={"RACEFREE_RECOVERY_WAIT_S": "0"})
    try:
        with first.client() as http:
            assert (
                http.post(
                    "/v1/kill-switch/activate",
                    json={"reason": "restart drill"},
                    headers=first.operator_headers(),
                ).status_code
                == 200
            )
    finally:
        first.stop()
    second = start_server(db_url, tmp_path, env={"RACEFREE_RECOVERY_WAIT_S": "0"})
    try:
        with second.client() as http:
            assert http.get("/health").json()["kill_switch"] == {"state": "ACTIVATED"}
            refused = http.post("/v1/agents", json={"name": "a"})
            assert (refused.status_code, refused.json()["code"]) == (503, "SYSTEM_LOCKED")
            assert refused.json()["details"]["reason"] == "restart drill"
            # the second start printed no new operator token: use one from the database
            with db.write() as tx:
                token = operators.create_token(tx, label="t", now=clock.now())
            op = {"Authorization": f"Bearer {token}"}
            assert http.get("/v1/audit-log", headers=op).status_code == 200
            master = {**op, "X-Master-Password": second.master_password}
            assert http.post("/v1/kill-switch/recovery", headers=master).status_code == 202
            assert http.post("/v1/agents").status_code == 503  # RECOVERING is locked too
            assert http.post("/v1/kill-switch/recovery/complete", headers=master).status_code == 200
            assert http.post("/v1/agents").json()["code"] == "AUTH_REQUIRED"
    finally:
        second.stop()


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgresql"])
def test_activation_through_one_server_locks_the_other_at_its_next_request(
    db_url: str, tmp_path: Path
) -> None:
    one = start_server(db_url, tmp_path)
    two = start_server(db_url, tmp_path)
    try:
        with one.client() as a, two.client() as b:
            op = one.operator_headers()  # the second start printed no new token
            agent = a.post("/v1/agents", json={"name": "bot"}, headers=op).json()
            issued = a.post("/v1/sessions", json={"agent_id": agent["id"]}, headers=op)
            as_agent = {"Authorization": f"Bearer {issued.json()['token']}"}
            assert b.get("/v1/sessions/current", headers=as_agent).status_code == 200

            activated = a.post(
                "/v1/kill-switch/activate", json={"reason": "two servers"}, headers=op
            )
            assert activated.status_code == 200
            refused = b.get("/v1/sessions/current", headers=as_agent)
            assert (refused.status_code, refused.json()["code"]) == (503, "SYSTEM_LOCKED")
            assert refused.json()["details"]["reason"] == "two servers"
            assert b.post("/v1/agents", json={"name": "x"}, headers=op).status_code == 503
            assert b.get("/v1/agents", headers=op).status_code == 200  # operators may read
    finally:
        one.stop()
        two.stop()


def test_the_automatic_hook_locks_the_api_too(
    client: TestClient, db: Database, clock: ManualClock
) -> None:
    killswitch.activate_now(db, "rule: spend spike", now=clock.now())
    problem = client.post("/v1/agents").json()
    assert problem["code"] == "SYSTEM_LOCKED"
    assert problem["details"]["reason"] == "rule: spend spike"


@pytest.mark.server
def test_racing_recovery_steps_against_a_real_server(db_url: str, tmp_path: Path) -> None:
    srv = start_server(db_url, tmp_path, env={"RACEFREE_RECOVERY_WAIT_S": "0"})
    master = {**srv.operator_headers(), "X-Master-Password": srv.master_password}
    try:
        with srv.client() as http:
            activated = http.post(
                "/v1/kill-switch/activate", json={"reason": "x"}, headers=srv.operator_headers()
            )
            assert activated.status_code == 200
        starts = http_race(5, srv.base_url, "POST", "/v1/kill-switch/recovery", headers=master)
        assert sorted(r.status_code for r in starts) == [202, 409, 409, 409, 409]
        assert {r.json()["code"] for r in starts if r.status_code == 409} == {
            "RECOVERY_ALREADY_STARTED"
        }

        clients = [srv.client(), srv.client()]
        paths = ("/v1/kill-switch/recovery/complete", "/v1/kill-switch/recovery/abort")
        try:
            outcomes = race(2, lambda i: clients[i].post(paths[i], headers=master))
        finally:
            for c in clients:
                c.close()
        responses = [o.value for o in outcomes]
        assert sorted(r.status_code for r in responses) == [200, 409]
        [loser] = [r for r in responses if r.status_code == 409]
        assert loser.json()["code"] == "INVALID_RECOVERY_STATE"
    finally:
        srv.stop()
