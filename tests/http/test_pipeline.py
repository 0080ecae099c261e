"""The request pipeline: at most one thread hop per request (issue 11), counted.

Every hand-off to a worker thread in this process goes through
``anyio.to_thread.run_sync`` (FastAPI's and Starlette's included), so the test
counts its calls per request. On SQLite, reads make none (they run on the loop);
on PostgreSQL, every request that touches the database makes exactly one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from racefree.core.db import Dialect
from racefree.runtime import Runtime


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(func, "__name__", repr(func)))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    yield calls


def _session(client: TestClient, operator: dict[str, str]) -> tuple[str, str]:
    agent = client.post("/v1/agents", json={"name": "a"}, headers=operator).json()["id"]
    client.post(f"/v1/agents/{agent}/deposit", json={"amount": "1000"}, headers=operator)
    opened = client.post("/v1/sessions", json={"agent_id": agent}, headers=operator).json()
    return opened["session_id"], opened["token"]


def test_one_hop_at_most_per_request(
    client: TestClient,
    operator_headers: dict[str, str],
    runtime: Runtime,
    hops: list[str],
) -> None:
    session_id, token = _session(client, operator_headers)
    session = {"Authorization": f"Bearer {token}"}
    reads = runtime.db.dialect is Dialect.POSTGRESQL  # reads hop only on PostgreSQL
    cases: list[tuple[str, str, dict[str, str], Any, int, int]] = [
        ("GET", "/metrics", {}, None, 200, int(reads)),  # one read: the outbox lag
        ("GET", "/health", {}, None, 200, int(reads)),
        ("GET", "/v1/sessions/current", session, None, 200, int(reads)),
        ("GET", "/v1/agents", operator_headers, None, 200, int(reads)),
        ("GET", "/v1/nope", {}, None, 404, int(reads)),  # the guard's read, still one
        ("GET", "/v1/audit-log?limit=0", operator_headers, None, 400, int(reads)),
        (
            "POST",
            "/v1/transactions",
            session,
            {"type": "TRANSFER", "amount": "1", "destination": "d"},
            200,
            1,
        ),
        ("POST", "/v1/agents", {}, {"name": "x"}, 401, 1),
        ("PUT", f"/v1/sessions/{session_id}/renew", session, None, 403, 1),
        # issue 12's routes: the same pipeline
        ("GET", "/v1/webhooks", operator_headers, None, 200, int(reads)),
        ("GET", "/v1/auto-stop/rules", operator_headers, None, 200, int(reads)),
        ("POST", "/v1/kill-switch/alerts", {}, {"status": "firing", "alerts": []}, 401, 1),
        ("GET", "/v1/events/stream", {}, None, 401, int(reads)),  # guard + auth: one hop
        ("GET", "/v1/events/stream?types=bad", operator_headers, None, 400, int(reads)),
    ]
    for method, path, headers, body, status, expected in cases:
        hops.clear()
        response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == status, (path, response.text)
        assert len(hops) == expected, (method, path, hops)


def test_the_transaction_object_is_the_documented_one(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    # responses are not re-validated per request: the documented model must match them
    from racefree.http.routes.transactions import TransactionOut

    _, token = _session(client, operator_headers)
    session = {"Authorization": f"Bearer {token}"}
    body = {"type": "TRANSFER", "amount": "1", "destination": "d"}
    submitted = client.post("/v1/transactions", json=body, headers=session).json()
    read = client.get(f"/v1/transactions/{submitted['transaction_id']}", headers=session).json()
    listed = client.get("/v1/transactions", headers=operator_headers).json()["transactions"]
    for shown in (read, *listed):
        assert set(shown) == set(TransactionOut.model_fields)
        assert TransactionOut.model_validate(shown).model_dump(mode="json") == shown
