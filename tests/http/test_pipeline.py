"""The request pipeline: at most one thread hop per request (issue 11), counted.

Every hand-off to a worker thread in this process goes through
:func:`racefree.http.hop.run_sync` (the pipeline's and the guard's) or
``anyio.to_thread.run_sync`` (FastAPI's and Starlette's), so the test counts the
calls of both per request. On SQLite, brief routes make none (they run on the
loop, reads and the hot writes alike) unless the writer is taken; on PostgreSQL,
every request that touches the database makes exactly one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from racefree.core.db import Dialect
from racefree.http import hop
from racefree.runtime import Runtime


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    for module in (anyio.to_thread, hop):
        original = module.run_sync

        async def counting(func: Any, *args: Any, _original: Any = original, **kw: Any) -> Any:
            calls.append(getattr(func, "__name__", repr(func)))
            return await _original(func, *args, **kw)

        monkeypatch.setattr(module, "run_sync", counting)
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
    reads = runtime.db.dialect is Dialect.POSTGRESQL  # brief routes hop only on PostgreSQL
    cases: list[tuple[str, str, dict[str, str], Any, int, int]] = [
        # the kill switch's state (a fresh bounded connection) and the outbox lag: one hop
        ("GET", "/metrics", {}, None, 200, 1),
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
            int(reads),  # brief: the ledger executes it, database work only
        ),
        (  # more than the balance: the one statement cannot pay it; the step path fails
            # it (INSUFFICIENT_BALANCE) in a worker thread, where its writes may wait
            "POST",
            "/v1/transactions",
            session,
            {"type": "TRANSFER", "amount": "1000", "destination": "d"},
            400,
            1,
        ),
        (  # its key's claim and stored answer are writes of their own: always a hop
            "POST",
            "/v1/transactions",
            {**session, "Idempotency-Key": "keyed-1"},
            {"type": "TRANSFER", "amount": "1", "destination": "d"},
            200,
            1,
        ),
        ("POST", "/v1/agents", {}, {"name": "x"}, 401, 1),
        ("PUT", f"/v1/sessions/{session_id}/renew", session, None, 403, int(reads)),
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


def test_idempotency_if_match_and_the_access_log_add_no_hop(
    client: TestClient,
    operator_headers: dict[str, str],
    hops: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 15's per-request work runs inside the pipeline's one hop: the key's claim,
    the change and the stored answer (or the replay); the If-Match CAS; the access line."""
    caplog.set_level(logging.INFO, logger="racefree.access")
    op = operator_headers
    agent = client.post("/v1/agents", json={"name": "a"}, headers=op).json()["id"]
    rule = client.post(
        "/v1/auto-stop/rules",
        json={"type": "HOURLY_RATE", "params": {"max_tx_per_hour": 5}, "agent_id": agent},
        headers=op,
    ).json()["id"]
    keyed = {**op, "Idempotency-Key": "hop-1"}
    cases: list[tuple[str, str, dict[str, str], Any, int]] = [
        ("POST", f"/v1/agents/{agent}/deposit", keyed, {"amount": "5"}, 200),
        ("POST", f"/v1/agents/{agent}/deposit", keyed, {"amount": "5"}, 200),  # the replay
        ("POST", f"/v1/agents/{agent}/deposit", keyed, {"amount": "6"}, 422),  # mismatch
        ("POST", f"/v1/agents/{agent}/suspend", {**op, "If-Match": '"1"'}, None, 200),
        ("POST", f"/v1/agents/{agent}/activate", {**op, "If-Match": '"1"'}, None, 412),
        (
            "PATCH",
            f"/v1/auto-stop/rules/{rule}",
            {**op, "If-Match": '"1"', "Idempotency-Key": "hop-2"},
            {"enabled": False},
            200,
        ),
        ("DELETE", f"/v1/auto-stop/rules/{rule}", {**op, "If-Match": '"1"'}, None, 412),
    ]
    for method, path, headers, body, status in cases:
        hops.clear()
        caplog.clear()
        response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == status, (method, path, response.text)
        assert len(hops) == 1, (method, path, hops)
        (line,) = [r for r in caplog.records if r.name == "racefree.access"]
        assert line.request_id == response.headers["x-request-id"]
    assert response.headers.get("idempotent-replayed") is None


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


@pytest.fixture
def hold_writer(runtime: Runtime) -> Iterator[Callable[[], threading.Event]]:
    """Makes another thread hold the SQLite writer until the returned event is set."""
    release = threading.Event()
    holders: list[threading.Thread] = []

    def hold() -> threading.Event:
        holding = threading.Event()

        def hold_the_writer() -> None:
            with runtime.db.write():
                holding.set()
                release.wait(10)

        holders.append(threading.Thread(target=hold_the_writer))
        holders[-1].start()
        assert holding.wait(10)
        return release

    yield hold
    release.set()
    for holder in holders:
        holder.join(10)


def _paying(client: TestClient, token: str, answers: list[int]) -> threading.Thread:
    """A started thread submitting one INSTANT transfer; its status lands in ``answers``."""
    thread = threading.Thread(
        target=lambda: answers.append(
            client.post(
                "/v1/transactions",
                json={"type": "TRANSFER", "amount": "1", "destination": "d"},
                headers={"Authorization": f"Bearer {token}"},
            ).status_code
        )
    )
    thread.start()
    return thread


def _until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_brief_write_finding_the_writer_taken_is_served_once_in_a_worker_thread(
    client: TestClient,
    operator_headers: dict[str, str],
    runtime: Runtime,
    hops: list[str],
    hold_writer: Callable[[], threading.Event],
) -> None:
    """The loop never waits for the writer: the payment starts over in one hop, where it
    waits for the holder, and is made exactly once."""
    session_id, token = _session(client, operator_headers)
    writer_held = hold_writer()
    answers: list[int] = []
    hops.clear()
    payer = _paying(client, token, answers)
    _until(lambda: bool(hops))
    assert hops == ["_serve"]  # refused on the loop, handed to a worker thread
    assert answers == []  # which waits for the writer
    writer_held.set()
    payer.join(10)
    assert answers == [200]
    assert hops == ["_serve"]
    with runtime.db.read() as tx:
        made = tx.scalar(
            "SELECT COUNT(*) FROM transactions WHERE session_id = :s", {"s": session_id}
        )
        entries = tx.scalar(
            "SELECT COUNT(*) FROM ledger_entries WHERE transaction_id IN"
            " (SELECT id FROM transactions WHERE session_id = :s)",
            {"s": session_id},
        )
    assert (made, entries) == (1, 1)


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_brief_write_hops_while_another_request_is_in_flight(
    client: TestClient,
    operator_headers: dict[str, str],
    runtime: Runtime,
    hops: list[str],
    monkeypatch: pytest.MonkeyPatch,
    hold_writer: Callable[[], threading.Event],
) -> None:
    """Under concurrent requests a write goes to a worker thread at once (SQLite's C code
    runs there without the GIL, beside the loop); reads stay on the loop."""
    tokens = [_session(client, operator_headers)[1] for _ in range(2)]
    tried_on_the_loop: list[int] = []
    without_waiting = runtime.db.without_waiting

    def counting() -> Any:
        tried_on_the_loop.append(1)
        return without_waiting()

    monkeypatch.setattr(runtime.db, "without_waiting", counting)
    writer_held = hold_writer()
    answers: list[int] = []
    hops.clear()
    first = _paying(client, tokens[0], answers)
    _until(lambda: len(hops) == 1)  # alone: tried on the loop, found the writer taken
    assert tried_on_the_loop == [1]
    second = _paying(client, tokens[1], answers)
    _until(lambda: len(hops) == 2)  # the first is in flight: straight to a thread
    assert tried_on_the_loop == [1]
    assert client.get("/health").status_code == 200  # a read: on the loop, no hop
    assert len(hops) == 2
    assert tried_on_the_loop == [1, 1]
    writer_held.set()
    for thread in (first, second):
        thread.join(10)
    assert answers == [200, 200]
