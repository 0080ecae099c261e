"""No write commits after KILL_SWITCH_ACTIVATED (issue 16, 3).

The guard checks the switch when a request starts; a request that passed it
can reach its write after an activation committed elsewhere. Each case here
pauses a real request of the real app right there -- after the guard and
its authentication, before its write transaction opens -- while an
activation commits, and then lets it go on: nothing may be written. Writes
whose door the cascade does not shut (a deposit, a termination, an owner
change, plan groups and generations) must be refused by the in-transaction
check with 503 ``SYSTEM_LOCKED``; the others by the door the cascade shut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.http import create_app
from racefree.killswitch.activation import activate_now
from racefree.runtime import Runtime
from racefree.settings import Settings
from tests.factory import OWNER_PUBLIC
from tests.faults.support import faulty as make_faulty
from tests.http.test_transactions import make_agent, make_session, transfer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None


Setup = Callable[[TestClient, dict[str, str], ManualClock], Request]


def _deposit(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    agent = make_agent(client, op)
    return Request("POST", f"/v1/agents/{agent}/deposit", op, {"amount": "500"})


def _suspend(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    return Request("POST", f"/v1/agents/{make_agent(client, op)}/suspend", op)


def _terminate(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    return Request("POST", f"/v1/agents/{make_agent(client, op)}/terminate", op)


def _change_owner(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    agent = make_agent(client, op)
    return Request("PATCH", f"/v1/agents/{agent}", op, {"owner_public_key": OWNER_PUBLIC})


def _open_session(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    return Request("POST", "/v1/sessions", op, {"agent_id": make_agent(client, op)})


def _renew(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    session = make_session(client, op, make_agent(client, op))
    current = client.get("/v1/sessions/current", headers=session).json()
    clock.advance(50_000)  # past half of expires_in (a day), before expiry
    return Request("PUT", f"/v1/sessions/{current['session_id']}/renew", session)


def _submit(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    session = make_session(client, op, make_agent(client, op))
    return Request("POST", "/v1/transactions", session, transfer(250))


def _reject(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    session = make_session(client, op, make_agent(client, op))
    queued = client.post("/v1/transactions", json=transfer(60_000), headers=session).json()
    return Request("POST", f"/v1/transactions/{queued['transaction_id']}/reject", op)


_GROUP = {
    "title": "stop",
    "start_date": "2026-01-01",
    "end_date": "2026-01-05",
    "items": [{"name": "a", "units": 5}],
}


def _create_plan_group(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    return Request("POST", "/v1/plan-groups", op, _GROUP)


def _generate(client: TestClient, op: dict[str, str], clock: ManualClock) -> Request:
    group = client.post("/v1/plan-groups", json=_GROUP, headers=op).json()
    return Request("POST", f"/v1/plan-groups/{group['id']}/generate", op)


#: Each write and how it may be refused after the stop: 503 SYSTEM_LOCKED from the
#: in-transaction check, or -- where the cascade already closed the door the write
#: must pass (a revoked session, a suspended agent, a cancelled transaction) -- that
#: door's own refusal. Either way nothing is written.
LOCKED = {"SYSTEM_LOCKED"}
WRITES: dict[str, tuple[Setup, set[str]]] = {
    "deposit": (_deposit, LOCKED),
    "suspend": (_suspend, LOCKED | {"AGENT_SUSPENDED"}),
    "terminate": (_terminate, LOCKED),
    "change_owner": (_change_owner, LOCKED),
    "open_session": (_open_session, LOCKED | {"AGENT_SUSPENDED"}),
    "renew": (_renew, LOCKED | {"SESSION_REVOKED"}),
    "submit": (_submit, LOCKED | {"SESSION_REVOKED"}),
    "reject": (_reject, LOCKED | {"TX_ALREADY_PROCESSED"}),
    "create_plan_group": (_create_plan_group, LOCKED),
    "generate": (_generate, LOCKED),
}


@pytest.fixture
def paused_app(
    db: Database, settings: Settings, clock: ManualClock
) -> Iterator[tuple[Any, TestClient]]:
    """The real app on the real database, pausable before its next write transaction."""
    faulty = make_faulty(db)
    with TestClient(
        create_app(Runtime(settings=settings, db=faulty, clock=clock)),
        raise_server_exceptions=False,
    ) as paused:
        yield faulty, paused


def _snapshot(db: Database) -> dict[str, Any]:
    with db.read() as tx:
        return {
            "balances": tx.all("SELECT agent_id, balance FROM accounts ORDER BY agent_id"),
            "agents": tx.all("SELECT id, status, owner_public_key FROM agents ORDER BY id"),
            "sessions": tx.all("SELECT id, token_hash, revoked_at FROM sessions ORDER BY id"),
            "transactions": tx.all("SELECT id, status FROM transactions ORDER BY id"),
            "plan_groups": tx.all("SELECT id, generation FROM plan_groups ORDER BY id"),
            "plans": tx.scalar("SELECT COUNT(*) FROM plans"),
        }


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_that_passed_the_guard_commits_nothing_after_an_activation(
    write: str,
    client: TestClient,
    operator_headers: dict[str, str],
    db: Database,
    clock: ManualClock,
    paused_app: tuple[Any, TestClient],
) -> None:
    setup, refusals = WRITES[write]
    request = setup(client, operator_headers, clock)
    faulty, paused = paused_app
    snapshot: dict[str, Any] = {}

    def activation_meanwhile() -> None:
        activate_now(db, "stop", now=clock.now(), actor="test")
        snapshot.update(_snapshot(db))

    faulty.before_write = activation_meanwhile
    response = paused.request(
        request.method, request.path, headers=request.headers, json=request.json
    )
    assert snapshot, f"the request never reached a write: {response.text}"
    assert response.json().get("code") in refusals, response.text
    assert _snapshot(db) == snapshot
    with db.read() as tx:
        later = tx.all(
            "SELECT event_type FROM audit_log WHERE id > (SELECT MAX(id) FROM audit_log"
            " WHERE event_type = 'KILL_SWITCH_ACTIVATED')"
        )
    assert later == []
