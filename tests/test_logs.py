"""Logs: JSON lines, one access line per request, domain events, request ids."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree import logs
from racefree.core import audit, context
from racefree.core.audit import Severity
from racefree.core.clock import ManualClock
from racefree.http import create_app
from racefree.runtime import Runtime
from racefree.testing import start_server
from tests.http.test_transactions import make_agent, transfer

JSON_LOGS = {"RACEFREE_LOG_FORMAT": "json", "RACEFREE_LOG_LEVEL": "info"}


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be one JSON object."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def _wait_for(path: Path, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in _json_lines(path) if predicate(line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.server
def test_json_lines_carry_the_request_id_of_the_response(
    engine: str, db_url: str, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path, env=JSON_LOGS)
    try:
        with server.client() as http:
            health = http.get("/health", headers={"X-Request-ID": "req-logs-health"})
            activated = http.post(
                "/v1/kill-switch/activate",
                json={"reason": "logs\ntest"},
                headers={**server.operator_headers(), "X-Request-ID": "req-logs-kill"},
            )
            generated = http.get("/v1/agents/nope", headers=server.operator_headers())
        assert (health.status_code, activated.status_code) == (200, 200)

        access = _wait_for(
            server.log_path,
            lambda e: e["logger"] == "racefree.access" and e["request_id"] == "req-logs-health",
        )
        assert len(access) == 1
        line = access[0]
        assert {k: line[k] for k in ("level", "method", "route", "status")} == {
            "level": "info",
            "method": "GET",
            "route": "/health",
            "status": 200,
        }
        assert isinstance(line["duration_ms"], float)
        assert line["ts"].endswith("Z")
        assert {"ts", "level", "logger", "msg", "request_id"} <= set(line)

        (event,) = _wait_for(
            server.log_path,
            lambda e: e["logger"] == "racefree.events" and e["msg"] == "KILL_SWITCH_ACTIVATED",
        )
        assert event["request_id"] == activated.headers["x-request-id"] == "req-logs-kill"
        assert event["level"] == "critical"
        assert event["details"]["reason"] == "logs\ntest"  # JSON escapes it: one line
        # a generated request id is logged too, with the route template, not the raw path
        (refused,) = _wait_for(
            server.log_path,
            lambda e: (
                e["logger"] == "racefree.access"
                and e["request_id"] == generated.headers["x-request-id"]
            ),
        )
        assert refused["route"] == "/v1/agents/{agent_id}"
        assert refused["status"] == generated.status_code
    finally:
        server.stop()
    assert all(isinstance(e, dict) for e in _json_lines(server.log_path))  # every line parses


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgresql"])  # two serving processes need PostgreSQL
def test_a_standby_replica_logs_no_line_per_poll(db_url: str, tmp_path: Path) -> None:
    env = {**JSON_LOGS, "RACEFREE_WORKER_INTERVAL_S": "0.05"}
    servers = [start_server(db_url, tmp_path, env=env) for _ in range(2)]
    try:
        time.sleep(1.5)  # ~30 polls per worker on the standby
        # read before stopping: a stopping server hands its leases to the other
        entries = [e for s in servers for e in _json_lines(s.log_path)]
    finally:
        for server in servers:
            server.stop()
    lock_lines = [e for e in entries if e["logger"] == "racefree.locks"]
    # one acquisition per worker lease, none for the standby's refused polls
    assert sorted(e["lock_outcome"] for e in lock_lines) == ["acquired"] * 4
    assert all(e["level"] != "debug" for e in entries)


@pytest.fixture
def json_capture() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_the_500_line_and_the_access_line_carry_the_clients_request_id(
    runtime: Runtime, json_capture: io.StringIO
) -> None:
    app = create_app(runtime)

    def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/v1/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/explode", headers={"X-Request-ID": "req-boom"})
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert response.headers["x-request-id"] == response.json()["request_id"] == "req-boom"
    entries = [json.loads(line) for line in json_capture.getvalue().splitlines()]
    (error,) = [e for e in entries if e["level"] == "error"]
    assert error["request_id"] == "req-boom"
    assert "secret internals" in error["exception"]
    (access,) = [e for e in entries if e["logger"] == "racefree.access"]
    assert (access["request_id"], access["status"], access["route"]) == (
        "req-boom",
        500,
        "/v1/explode",
    )


ROUTINE = [
    "SESSION_RENEWED",
    "TRANSACTION_CREATED",
    "TRANSACTION_CLAIMED",
    "TRANSACTION_SUBMITTED",
    "TRANSACTION_CONFIRMED",
]


def test_routine_steps_log_at_debug_and_the_rest_at_their_severity(
    client: TestClient,
    operator_headers: dict[str, str],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A payment's and a renewal's steps are routine (the access line tells of them);
    their audit rows are written all the same, and what DESIGN 11 names is not routine."""
    caplog.set_level(logging.DEBUG, logger="racefree.events")
    op = operator_headers
    agent_id = make_agent(client, op)
    opened = client.post("/v1/sessions", json={"agent_id": agent_id}, headers=op).json()
    clock.advance(86400 // 2 + 1)  # past half the session's lifetime: it may renew
    renewed = client.post(
        f"/v1/sessions/{opened['session_id']}/renew",
        headers={"Authorization": f"Bearer {opened['token']}"},
    )
    assert renewed.status_code == 200, renewed.text
    session = {"Authorization": f"Bearer {renewed.json()['token']}"}
    paid = client.post("/v1/transactions", json=transfer(5), headers=session)
    assert paid.json()["status"] == "CONFIRMED", paid.text
    revoked = client.delete(f"/v1/sessions/{opened['session_id']}", headers=op)
    assert revoked.status_code == 200, revoked.text

    levels = {r.getMessage(): r.levelname for r in caplog.records if r.name == "racefree.events"}
    assert {event: levels[event] for event in ROUTINE} == dict.fromkeys(ROUTINE, "DEBUG")
    assert levels["AGENT_CREATED"] == levels["SESSION_CREATED"] == "INFO"
    assert levels["SESSION_REVOKED"] == "WARNING"
    written = client.get("/v1/audit-log", params={"limit": 100}, headers=op).json()["entries"]
    assert set(ROUTINE) <= {entry["event_type"] for entry in written}


def test_a_routine_event_above_info_logs_at_its_severity(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="racefree.events")
    entries = [
        audit.row("TRANSACTION_CLAIMED", at=0, severity=severity, details={})
        for severity in (Severity.INFO, Severity.WARNING, Severity.CRITICAL)
    ]
    audit.logged(entries)
    assert [r.levelname for r in caplog.records] == ["DEBUG", "WARNING", "CRITICAL"]


def test_text_lines_escape_control_characters() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("text"))
    log = logging.getLogger("racefree.test-text")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("name %s", "evil\nINFO forged", extra={"field": "a\rb"})
    finally:
        log.removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    assert "evil\\nINFO forged" in line
    assert "field=a\\rb" in line


@pytest.mark.parametrize(
    "created",
    [0.0, 0.0005, 1796133235.0, 1796133235.9995, 1796133235.9999996, 1348328698.8279998],
)
def test_ts_is_what_datetime_prints_to_the_millisecond(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert logs.timestamp(created) == expected.replace("+00:00", "Z")


def _record(msg: str, *args: Any, exc_info: Any = None, **kwargs: Any) -> logging.LogRecord:
    record = logging.getLogger("racefree.test-format").makeRecord(
        "racefree.test-format", logging.WARNING, __file__, 1, msg, args, exc_info, **kwargs
    )
    record.created = 1796133235.1234567
    return record


def test_a_json_line_puts_the_fixed_fields_first_then_the_extras_in_order() -> None:
    record = _record("paid %s", "1", extra={"amount": "1", "request_id": "req-x", "n": 2})
    line = logs.formatter("json").format(record)
    assert list(json.loads(line).items()) == [
        ("ts", "2026-12-01T13:53:55.123Z"),
        ("level", "warning"),
        ("logger", "racefree.test-format"),
        ("msg", "paid 1"),
        ("request_id", "req-x"),
        ("amount", "1"),
        ("n", 2),
    ]


def test_a_line_takes_the_request_id_of_the_request_being_served() -> None:
    token = context.request_id.set("req-served")
    try:
        text = logs.formatter("text").format(_record("hello"))
        explicit = logs.formatter("text").format(_record("hi", extra={"request_id": "req-own"}))
    finally:
        context.request_id.reset(token)
    assert (
        text == "2026-12-01T13:53:55.123Z WARNING racefree.test-format hello request_id=req-served"
    )
    assert explicit.endswith("hi request_id=req-own")


def test_a_traceback_stays_on_its_records_text_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info())
    line = logs.formatter("text").format(record)
    assert "\n" not in line
    assert line.startswith("2026-12-01T13:53:55.123Z WARNING racefree.test-format failed Traceback")
    assert line.endswith("ValueError: bad\\nvalue")
