"""/v1/plan-groups over HTTP: the contract through the app, the races through real servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from racefree import agents, sessions
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.locks import LeaseLocks
from racefree.testing import Server, http_race, start_server

GROUP = {
    "title": "spring planting",
    "start_date": "2026-03-01",
    "end_date": "2026-03-10",
    "items": [{"name": "water", "units": 100}, {"name": "seeds", "units": 7}],
}
TOTAL_UNITS = {"water": 100, "seeds": 7}


def _create(client: httpx.Client | TestClient, headers: dict[str, str]) -> str:
    response = client.post("/v1/plan-groups", json=GROUP, headers=headers)
    assert response.status_code == 201, response.text
    group_id: str = response.json()["id"]
    return group_id


def _assert_exactly_one_generation(plans: dict[str, Any], generation: int) -> None:
    assert plans["generation"] == generation
    assert {p["generation"] for p in plans["plans"]} == {generation}
    for item, units in TOTAL_UNITS.items():
        assert sum(p["units"] for p in plans["plans"] if p["item"] == item) == units
    days_items = [(p["day"], p["item"]) for p in plans["plans"]]
    assert len(days_items) == len(set(days_items))  # no duplicates


class TestContract:
    def test_create_get_generate_and_list_plans(
        self, client: TestClient, operator_headers: dict[str, str]
    ) -> None:
        created = client.post("/v1/plan-groups", json=GROUP, headers=operator_headers)
        assert created.status_code == 201
        body = created.json()
        assert body["title"] == GROUP["title"]
        assert body["items"] == GROUP["items"]
        assert (body["generation"], body["fencing_token"], body["agent_id"]) == (0, 0, None)
        group_id = body["id"]
        assert client.get(f"/v1/plan-groups/{group_id}", headers=operator_headers).json() == body
        empty = client.get(f"/v1/plan-groups/{group_id}/plans", headers=operator_headers)
        assert empty.json() == {
            "plan_group_id": group_id,
            "generation": 0,
            "total_units": 0,
            "plans": [],
        }

        generated = client.post(f"/v1/plan-groups/{group_id}/generate", headers=operator_headers)
        assert generated.status_code == 200, generated.text
        result = generated.json()
        assert result == {
            "plan_group_id": group_id,
            "generation": 1,
            "plans_created": 17,
            "fencing_token": 1,
            "lock_wait_ms": result["lock_wait_ms"],
        }
        assert result["lock_wait_ms"] >= 0
        plans = client.get(f"/v1/plan-groups/{group_id}/plans", headers=operator_headers).json()
        _assert_exactly_one_generation(plans, 1)
        assert plans["total_units"] == 107

        again = client.post(f"/v1/plan-groups/{group_id}/generate", headers=operator_headers)
        assert (again.json()["generation"], again.json()["fencing_token"]) == (2, 2)
        plans = client.get(f"/v1/plan-groups/{group_id}/plans", headers=operator_headers).json()
        _assert_exactly_one_generation(plans, 2)

    def test_the_lock_route_shows_the_holder_and_fencing_token(
        self,
        client: TestClient,
        operator_headers: dict[str, str],
        db: Database,
        clock: ManualClock,
    ) -> None:
        group_id = _create(client, operator_headers)
        path = f"/v1/plan-groups/{group_id}/lock"
        free = client.get(path, headers=operator_headers).json()
        assert (free["held"], free["holder"], free["fencing_token"]) == (False, None, None)
        lease = LeaseLocks(db, clock).acquire(f"plan-group:{group_id}", holder="worker-7", ttl_s=30)
        held = client.get(path, headers=operator_headers).json()
        assert held == {
            "held": True,
            "holder": "worker-7",
            "fencing_token": lease.token,
            "acquired_at": "2027-01-15T08:00:00.000Z",
            "expires_at": "2027-01-15T08:00:30.000Z",
            "acquired_at_epoch": lease.acquired_at_ms // 1000,
            "expires_at_epoch": lease.expires_at_ms // 1000,
        }

    def test_a_held_group_answers_409_in_progress_with_retry_after_or_lock_timeout(
        self,
        client: TestClient,
        operator_headers: dict[str, str],
        db: Database,
        clock: ManualClock,
    ) -> None:
        group_id = _create(client, operator_headers)
        LeaseLocks(db, clock).acquire(f"plan-group:{group_id}", holder="worker-7", ttl_s=30)
        clock.advance(10)
        busy = client.post(f"/v1/plan-groups/{group_id}/generate", headers=operator_headers)
        assert busy.status_code == 409
        assert busy.headers["Retry-After"] == "20"
        problem = busy.json()
        assert (problem["code"], problem["retryable"]) == ("PLAN_GENERATION_IN_PROGRESS", True)
        assert problem["details"]["holder"] == "worker-7"
        assert problem["details"]["acquired_at"] == "2027-01-15T08:00:00.000Z"
        assert problem["details"]["expires_at"] == "2027-01-15T08:00:30.000Z"

        timeout = client.post(
            f"/v1/plan-groups/{group_id}/generate?wait=0.05", headers=operator_headers
        )
        assert timeout.status_code == 409
        assert (timeout.json()["code"], timeout.json()["retryable"]) == ("LOCK_TIMEOUT", True)
        assert "Retry-After" in timeout.headers

    @pytest.mark.parametrize(
        "change",
        [
            {"end_date": "2026-02-01"},
            {"end_date": "2027-03-02"},
            {"items": []},
            {"items": [{"name": "a", "units": 1}, {"name": "a", "units": 2}]},
            {"items": [{"name": "a", "units": 0}]},
            {"start_date": "not a date"},
            {"title": ""},
        ],
    )
    def test_invalid_bodies_are_400_validation_error(
        self, client: TestClient, operator_headers: dict[str, str], change: dict[str, Any]
    ) -> None:
        response = client.post(
            "/v1/plan-groups", json={**GROUP, **change}, headers=operator_headers
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"

    @pytest.mark.parametrize("wait", ["-1", "301", "soon"])
    def test_an_invalid_wait_is_400(
        self, client: TestClient, operator_headers: dict[str, str], wait: str
    ) -> None:
        group_id = _create(client, operator_headers)
        response = client.post(
            f"/v1/plan-groups/{group_id}/generate?wait={wait}", headers=operator_headers
        )
        assert response.status_code == 400

    @pytest.mark.parametrize(
        ("method", "suffix"),
        [("GET", ""), ("GET", "/plans"), ("POST", "/generate"), ("GET", "/lock")],
    )
    def test_unknown_groups_are_404_and_take_no_lock(
        self,
        client: TestClient,
        operator_headers: dict[str, str],
        db: Database,
        clock: ManualClock,
        method: str,
        suffix: str,
    ) -> None:
        response = client.request(method, f"/v1/plan-groups/nope{suffix}", headers=operator_headers)
        assert response.status_code == 404
        assert response.json()["code"] == "PLAN_GROUP_NOT_FOUND"
        assert LeaseLocks(db, clock).held() == []

    def test_plan_routes_need_credentials(self, client: TestClient) -> None:
        assert client.post("/v1/plan-groups", json=GROUP).status_code == 401

    def test_openapi_documents_the_generation_errors(self, client: TestClient) -> None:
        operation = client.get("/openapi.json").json()["paths"][
            "/v1/plan-groups/{group_id}/generate"
        ]["post"]
        text = str(operation["responses"])
        for code in (
            "PLAN_GENERATION_IN_PROGRESS",
            "LOCK_TIMEOUT",
            "LOCK_LOST",
            "PLAN_GROUP_NOT_FOUND",
        ):
            assert code in text


class TestSessions:
    @pytest.fixture
    def session_headers(self, db: Database, clock: ManualClock) -> Callable[[str], dict[str, str]]:
        def open_for(name: str) -> dict[str, str]:
            with db.write() as tx:
                agent = agents.create(tx, name=name, now=clock.now())
                issued = sessions.issue(tx, agent.id, now=clock.now(), policy=sessions.Policy())
            return {"Authorization": f"Bearer {issued.token}"}

        return open_for

    def test_a_session_creates_a_group_its_agent_owns_and_can_generate(
        self,
        client: TestClient,
        session_headers: Callable[[str], dict[str, str]],
        operator_headers: dict[str, str],
        db: Database,
        clock: ManualClock,
    ) -> None:
        mine = session_headers("planner")
        created = client.post("/v1/plan-groups", json=GROUP, headers=mine)
        assert created.status_code == 201, created.text
        group = created.json()
        with db.read() as tx:
            (agent_id,) = [a.id for a in agents.list_agents(tx, limit=10) if a.name == "planner"]
        assert group["agent_id"] == agent_id
        group_id = group["id"]
        generated = client.post(f"/v1/plan-groups/{group_id}/generate", headers=mine)
        assert generated.status_code == 200, generated.text
        plans = client.get(f"/v1/plan-groups/{group_id}/plans", headers=mine).json()
        _assert_exactly_one_generation(plans, 1)
        assert client.get(f"/v1/plan-groups/{group_id}/lock", headers=mine).status_code == 200
        # operators reach every group
        assert client.get(f"/v1/plan-groups/{group_id}", headers=operator_headers).json() == {
            **group,
            "generation": 1,
            "fencing_token": 1,
            "generated_at": group["created_at"],
            "generated_at_epoch": group["created_at_epoch"],
        }
        # the lock holder names the agent and session
        LeaseLocks(db, clock).acquire(f"plan-group:{group_id}", holder="x", ttl_s=30)
        busy = client.post(f"/v1/plan-groups/{group_id}/generate", headers=mine)
        assert busy.json()["code"] == "PLAN_GENERATION_IN_PROGRESS"

    @pytest.mark.parametrize(
        ("method", "suffix"),
        [("GET", ""), ("GET", "/plans"), ("POST", "/generate"), ("GET", "/lock")],
    )
    def test_another_agents_session_is_forbidden_and_takes_no_lock(
        self,
        client: TestClient,
        session_headers: Callable[[str], dict[str, str]],
        operator_headers: dict[str, str],
        db: Database,
        clock: ManualClock,
        method: str,
        suffix: str,
    ) -> None:
        owned = _create(client, session_headers("owner"))
        by_operator = _create(client, operator_headers)
        stranger = session_headers("stranger")
        for group_id in (owned, by_operator):
            response = client.request(
                method, f"/v1/plan-groups/{group_id}{suffix}", headers=stranger
            )
            assert response.status_code == 403
            assert response.json()["code"] == "FORBIDDEN"
        assert LeaseLocks(db, clock).held() == []

    def test_openapi_documents_session_and_plan_codes_sharing_a_status(
        self, client: TestClient
    ) -> None:
        responses = client.get("/openapi.json").json()["paths"][
            "/v1/plan-groups/{group_id}/generate"
        ]["post"]["responses"]
        conflicts = str(responses["409"])
        for code in ("AGENT_SUSPENDED", "PLAN_GENERATION_IN_PROGRESS", "LOCK_TIMEOUT", "LOCK_LOST"):
            assert code in conflicts
        assert "FORBIDDEN" in str(responses["403"])


# -- real server processes ---------------------------------------------------------------


@pytest.fixture
def make_server(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(**env: str) -> Server:
        server = start_server(db_url, tmp_path, env={k.upper(): v for k, v in env.items()})
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _in_background(fn: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    return thread, box


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _lock(client: httpx.Client, group_id: str, headers: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/plan-groups/{group_id}/lock", headers=headers).json()
    return body


def _metric(text: str, line_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.server
def test_20_concurrent_generations_through_a_real_server_have_exactly_one_winner(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # the winner holds the lock until every loser has answered
    server = make_server(racefree_plan_generation_gate=str(gate))
    headers = server.operator_headers()
    with server.client() as client:
        group_id = _create(client, headers)

    def open_gate_after_the_losers(answers: int) -> None:
        if answers == 19:
            gate.touch()

    responses = http_race(
        20,
        server.base_url,
        "POST",
        f"/v1/plan-groups/{group_id}/generate",
        headers=headers,
        answered=open_gate_after_the_losers,
    )
    by_status = sorted(r.status_code for r in responses)
    assert by_status == [200] + [409] * 19
    for response in responses:
        if response.status_code == 409:
            problem = response.json()
            assert problem["code"] == "PLAN_GENERATION_IN_PROGRESS"
            assert problem["retryable"] is True
            assert int(response.headers["Retry-After"]) >= 1
            assert problem["details"]["holder"].startswith("operator:")
            assert problem["details"]["acquired_at"] and problem["details"]["expires_at"]
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert (winner["generation"], winner["plans_created"]) == (1, 17)
    with server.client() as client:
        plans = client.get(f"/v1/plan-groups/{group_id}/plans", headers=headers).json()
        assert not _lock(client, group_id, headers)["held"]
    _assert_exactly_one_generation(plans, 1)


@pytest.mark.server
def test_waiting_succeeds_after_the_holder_finishes_and_too_short_a_wait_times_out(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # each touch lets one generation write
    server = make_server(racefree_plan_generation_gate=str(gate), racefree_log_level="info")
    headers = server.operator_headers()
    generate = "/v1/plan-groups/{}/generate"
    waiters = 'racefree_lock_waiters{backend="lease",scope="plan-group"}'
    with server.client() as client, server.client() as other, server.client() as third_client:
        group_id = _create(client, headers)
        path = generate.format(group_id)

        holder, first = _in_background(lambda: other.post(path, headers=headers))
        _wait_for(lambda: _lock(client, group_id, headers)["held"], "the first generation")
        waiter, waited = _in_background(
            lambda: third_client.post(f"{path}?wait=60", headers=headers)
        )
        _wait_for(lambda: _metric(client.get("/metrics").text, waiters) == 1, "the waiter")
        gate.touch()
        holder.join()
        assert first[0].status_code == 200
        gate.touch()
        waiter.join()
        assert waited[0].status_code == 200, waited[0].text
        assert waited[0].json()["generation"] == 2
        assert waited[0].json()["lock_wait_ms"] > 0

        holder, third = _in_background(lambda: other.post(path, headers=headers))
        _wait_for(lambda: _lock(client, group_id, headers)["held"], "the third generation")
        too_short = client.post(f"{path}?wait=0.2", headers=headers)
        gate.touch()
        holder.join()
        assert too_short.status_code == 409
        assert too_short.json()["code"] == "LOCK_TIMEOUT"
        assert "Retry-After" in too_short.headers
        assert third[0].status_code == 200

        metrics = client.get("/metrics").text
    labels = 'backend="lease",outcome="{}",scope="plan-group"'
    assert _metric(metrics, "racefree_lock_wait_seconds_count{" + labels.format("acquired")) == 3
    assert _metric(metrics, "racefree_lock_wait_seconds_sum{" + labels.format("acquired")) > 0
    assert _metric(metrics, "racefree_lock_wait_seconds_count{" + labels.format("timeout")) == 1
    assert _metric(metrics, 'racefree_lock_timeout_total{backend="lease",scope="plan-group"}') == 1
    assert (
        _metric(metrics, 'racefree_lock_hold_seconds_count{backend="lease",scope="plan-group"}')
        == 3
    )
    log = server.log_path.read_text()
    acquired = [
        line
        for line in log.splitlines()
        if "racefree.locks" in line
        and f"key=plan-group:{group_id}" in line
        and "outcome=acquired" in line
    ]
    assert len(acquired) == 3
    assert all("backend=lease" in line and "wait_ms=" in line for line in acquired)
    waited_ms = max(float(line.split("wait_ms=")[1].split()[0]) for line in acquired)
    assert waited_ms > 0
    assert sum("outcome=timeout" in line for line in log.splitlines()) == 1


_HOLD_AND_SLEEP = textwrap.dedent(
    """
    import sys, time
    from racefree.core.clock import SystemClock
    from racefree.core.db import Database
    from racefree.core.locks import Heartbeat, LeaseLocks
    url, key, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3])
    locks = LeaseLocks(Database.from_url(url), SystemClock())
    lease = locks.acquire(key, holder="doomed-worker", ttl_s=ttl)
    with Heartbeat(locks, lease):  # the lease lives exactly as long as this process
        print(lease.token, flush=True)
        time.sleep(600)
    """
)


@pytest.mark.server
def test_a_sigkilled_lease_holder_blocks_the_group_no_longer_than_the_ttl(
    make_server: Callable[..., Server],
    db_url: str,
) -> None:
    server = make_server(racefree_lock_ttl_s="2")
    headers = server.operator_headers()
    with server.client() as client:
        group_id = _create(client, headers)
        child = subprocess.Popen(
            [sys.executable, "-c", _HOLD_AND_SLEEP, db_url, f"plan-group:{group_id}", "4"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        path = f"/v1/plan-groups/{group_id}/generate"
        try:
            assert child.stdout is not None
            doomed_token = int(child.stdout.readline())
            blocked = client.post(path, headers=headers)  # the holder lives and renews
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert blocked.status_code == 409
        assert blocked.json()["details"]["holder"] == "doomed-worker"
        # killed, it renews no more: its lease runs out within the TTL and the group is free
        after_ttl = client.post(f"{path}?wait=30", headers=headers)
        assert after_ttl.status_code == 200, after_ttl.text
        assert after_ttl.json()["fencing_token"] > doomed_token
        assert not _lock(client, group_id, headers)["held"]


_PAUSED_GENERATOR = textwrap.dedent(
    """
    import sys
    from racefree.core.clock import SystemClock
    from racefree.core.db import Database
    from racefree.core.errors import RacefreeError
    from racefree.core.locks import LeaseLocks
    from racefree.plans import Generator
    url, group_id = sys.argv[1], sys.argv[2]
    db = Database.from_url(url)
    generator = Generator(db, SystemClock(), LeaseLocks(db, SystemClock()), ttl_s=1.0)
    prepared = generator.prepare(generator.lock(group_id, holder="paused-worker"), group_id)
    print(prepared.lease.token, flush=True)
    sys.stdin.readline()  # paused: no heartbeat while the test lets the lease run out
    try:
        generator.write(prepared)
        print("WROTE", flush=True)
    except RacefreeError as exc:
        print(exc.code.value, flush=True)
    """
)


@pytest.mark.server
def test_a_holder_process_paused_past_its_ttl_writes_nothing_and_the_new_holders_plans_stand(
    make_server: Callable[..., Server],
    db_url: str,
) -> None:
    server = make_server()
    headers = server.operator_headers()
    with server.client() as client:
        group_id = _create(client, headers)
        paused = subprocess.Popen(
            [sys.executable, "-c", _PAUSED_GENERATOR, db_url, group_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        try:
            assert paused.stdout is not None and paused.stdin is not None
            paused_token = int(paused.stdout.readline())
            _wait_for(lambda: not _lock(client, group_id, headers)["held"], "the lease to expire")
            fresh = client.post(f"/v1/plan-groups/{group_id}/generate", headers=headers)
            assert fresh.status_code == 200, fresh.text
            paused.stdin.write("\n")
            paused.stdin.flush()
            assert paused.stdout.readline().strip() == "LOCK_LOST"
        finally:
            paused.kill()
            paused.wait()
        plans = client.get(f"/v1/plan-groups/{group_id}/plans", headers=headers).json()
        group = client.get(f"/v1/plan-groups/{group_id}", headers=headers).json()
    _assert_exactly_one_generation(plans, 1)
    assert group["fencing_token"] == fresh.json()["fencing_token"] > paused_token


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgresql"])  # two servers; SQLite: tests/plans
def test_a_server_paused_past_its_ttl_writes_nothing_and_the_new_holders_plans_stand(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Two servers on one PostgreSQL database; the first is SIGSTOPped mid-generation."""
    gate = tmp_path / "gate"  # the first server's generation waits here until the test opens it
    paused = make_server(racefree_lock_ttl_s="1", racefree_plan_generation_gate=str(gate))
    fresh = make_server(racefree_lock_ttl_s="1")
    headers = paused.operator_headers()
    with paused.client() as a, fresh.client() as b:
        group_id = _create(a, headers)
        path = f"/v1/plan-groups/{group_id}/generate"
        request_a, response_a = _in_background(lambda: a.post(path, headers=headers))
        _wait_for(lambda: _lock(b, group_id, headers)["held"], "the first server's lease")
        paused.process.send_signal(signal.SIGSTOP)
        try:
            _wait_for(lambda: not _lock(b, group_id, headers)["held"], "the lease to expire")
            taken_over = b.post(path, headers=headers)
        finally:
            paused.process.send_signal(signal.SIGCONT)
            gate.touch()
        request_a.join()
        assert taken_over.status_code == 200, taken_over.text
        assert taken_over.json()["generation"] == 1
        assert response_a[0].status_code == 409
        assert response_a[0].json()["code"] == "LOCK_LOST"
        plans = b.get(f"/v1/plan-groups/{group_id}/plans", headers=headers).json()
        group = b.get(f"/v1/plan-groups/{group_id}", headers=headers).json()
    _assert_exactly_one_generation(plans, 1)
    assert group["fencing_token"] == taken_over.json()["fencing_token"]
