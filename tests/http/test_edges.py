"""The HTTP edge (issue 9 items 5, 6, 7, 11): hostile input is refused before any work.

Every test runs on SQLite and PostgreSQL through the real app; the body-limit
ones also drive the ASGI app directly, counting the bytes it pulls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree import agents, logs
from racefree.core.db import Database
from racefree.http import create_app
from racefree.runtime import Runtime
from racefree.testing import Server

PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def _agent_count(db: Database) -> int:
    with db.read() as tx:
        return int(tx.scalar("SELECT COUNT(*) FROM agents"))


# -- 5: control characters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/ab%00cd",  # a NUL in a path id
        "/v1/agents/ab%0Acd",  # a newline would forge a log line
        "/v1/sessions/%1b[31m",
        "/v1/transactions/x%7F",
        "/v1/agents?after_id=a%00b",  # query parameters
        "/v1/agents?status=ACTIVE%0D%0A",
        "/v1/audit-log?event_type=%C2%85",  # a C1 control (NEL)
    ],
)
def test_control_characters_in_paths_and_queries_are_400(
    client: TestClient, operator_headers: dict[str, str], path: str
) -> None:
    body = _problem(client.get(path, headers=operator_headers), 400, "VALIDATION_ERROR")
    assert body["details"]["issues"][0]["type"] == "control_character"


def test_control_characters_in_json_strings_are_400_and_nothing_is_stored(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    for bad in ({"name": "a\u0000b"}, {"name": "bell\u0007"}, {"name": "cr\r"}, {"a\u0000": 1}):
        response = client.post("/v1/agents", json=bad, headers=operator_headers)
        body = _problem(response, 400, "VALIDATION_ERROR")
        assert body["details"]["issues"][0]["type"] == "control_character"
    assert _agent_count(db) == 0
    # free text keeps tab and newline
    kept = client.post(
        "/v1/agents", json={"name": "two\nlines\tand a tab"}, headers=operator_headers
    )
    assert kept.status_code == 201, kept.text
    assert kept.json()["name"] == "two\nlines\tand a tab"


def test_control_characters_in_nested_body_strings_are_400(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    group = {
        "title": "plan",
        "start_date": "2026-01-01",
        "end_date": "2026-01-02",
        "items": [{"name": "x\u0000", "units": 1}],
    }
    body = _problem(
        client.post("/v1/plan-groups", json=group, headers=operator_headers),
        400,
        "VALIDATION_ERROR",
    )
    assert body["details"]["issues"][0]["loc"] == ["body", "items", 0, "name"]


def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One request straight into the ASGI app (headers no client library would send)."""
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = _scope(method, path, headers)
    asyncio.run(app(scope, receive, send))
    return status[0]


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }


def test_control_characters_in_header_values_are_400(runtime: Runtime, operator_token: str) -> None:
    app = create_app(runtime)
    auth = (b"authorization", f"Bearer {operator_token}".encode())
    assert _asgi(app, "GET", "/v1/agents", [auth]) == 200
    for header in [
        (b"idempotency-key", b"k\x00ey"),
        (b"x-owner-signature", b"a\nb"),
        (b"user-agent", b"evil\x1b[2J"),
    ]:
        assert _asgi(app, "GET", "/v1/agents", [auth, header]) == 400, header
    assert _asgi(app, "GET", "/v1/agents", [auth, (b"user-agent", b"tab\tok")]) == 200


def test_log_lines_escape_control_characters() -> None:
    formatter = logs.formatter("text")
    record = logging.LogRecord(
        "racefree.http", logging.ERROR, __file__, 1, "serving %s", ("/x\nINFO forged\x00",), None
    )
    line = formatter.format(record)
    assert "\n" not in line and "\x00" not in line
    assert line.endswith("ERROR racefree.http serving /x\\nINFO forged\\x00")


def test_serve_logging_escapes_every_logger(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("text", "info")
        logging.getLogger("uvicorn.error").warning("GET /a%s 200", "\r\nINFO forged line")
        logging.getLogger("racefree.http").error("boom", exc_info=ValueError("x\ny"))
    finally:
        root.handlers[:], root.level = saved
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("GET /a\\r\\nINFO forged line 200")
    assert "ValueError: x\\ny" in lines[1]


# -- 6: body limits, guard and authentication before the body ----------------------------------


def test_a_body_over_the_limit_is_413(client: TestClient, operator_headers: dict[str, str]) -> None:
    big = json.dumps({"name": "x" * (MIB + 10)})
    response = client.post(
        "/v1/agents",
        content=big,
        headers={**operator_headers, "content-type": "application/json"},
    )
    body = _problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert body["details"]["max_body_bytes"] == MIB


def test_a_chunked_body_over_the_limit_is_413(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    response = client.post("/v1/agents", content=chunks(), headers=operator_headers)
    _problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert _agent_count(db) == 0


class CountingReceive:
    """An ASGI ``receive`` of a ``size``-byte body in 64 KiB chunks; counts what was pulled."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.pulled = 0

    async def __call__(self) -> dict[str, Any]:
        chunk = min(self.left, 65536)
        self.left -= chunk
        self.pulled += chunk
        return {"type": "http.request", "body": b"x" * chunk, "more_body": self.left > 0}


def _post(app: Any, headers: list[tuple[bytes, bytes]], receive: CountingReceive) -> int:
    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    asyncio.run(app(_scope("POST", "/v1/agents", headers), receive, send))
    return status[0]


SIZE = 22 * MIB


@pytest.mark.parametrize(
    "credentials",
    [[], [(b"authorization", b"Bearer rf_op_" + b"A" * 43)]],
    ids=["no token", "unknown token"],
)
def test_an_unauthenticated_22_mb_body_is_401_unread(
    runtime: Runtime, credentials: list[tuple[bytes, bytes]]
) -> None:
    app = create_app(runtime)
    announced = CountingReceive(SIZE)
    length = [(b"content-length", str(SIZE).encode())]
    assert _post(app, [*credentials, *length], announced) == 401
    assert announced.pulled == 0  # Content-Length said too much: not a byte read
    streamed = CountingReceive(SIZE)  # no Content-Length: read up to the limit, never parsed
    assert _post(app, credentials, streamed) == 401
    assert streamed.pulled <= MIB + 65536


def test_an_authenticated_22_mb_body_is_413_unread(runtime: Runtime, operator_token: str) -> None:
    app = create_app(runtime)
    receive = CountingReceive(SIZE)
    headers = [
        (b"authorization", f"Bearer {operator_token}".encode()),
        (b"content-length", str(SIZE).encode()),
    ]
    assert _post(app, headers, receive) == 413
    assert receive.pulled == 0


def test_while_locked_a_22_mb_body_is_503_unread(
    client: TestClient, runtime: Runtime, operator_headers: dict[str, str]
) -> None:
    locked = client.post("/v1/kill-switch/activate", json={"reason": "x"}, headers=operator_headers)
    assert locked.status_code == 200
    receive = CountingReceive(SIZE)
    status = _post(create_app(runtime), [(b"content-length", str(SIZE).encode())], receive)
    assert (status, receive.pulled) == (503, 0)


@pytest.mark.server
def test_a_real_server_answers_401_without_waiting_for_a_22_mb_body(server: Server) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {SIZE}\r\n\r\n".encode()
            + b'{"name": "'
        )
        answer = conn.recv(65536)  # the answer comes though almost none of the body was sent
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


# -- 7: bounded metric labels ---------------------------------------------------------------


def test_invented_methods_do_not_grow_the_metrics(client: TestClient) -> None:
    client.request("BREW", "/health")
    before = client.get("/metrics").text
    for i in range(200):
        client.request(f"INVENTED{i}", f"/v1/nope-{i}")
        client.request(f"X{i}", "/health")
    after = client.get("/metrics").text
    assert "INVENTED" not in after and 'method="X' not in after and "nope-" not in after
    assert 'method="OTHER",route="unmatched"' in after
    assert 'method="OTHER",route="/health"' in after
    # the same series, only their values moved (plus /metrics' own GET series)
    series = {line.split(" ")[0] for line in after.splitlines() if not line.startswith("#")}
    series_before = {line.split(" ")[0] for line in before.splitlines() if not line.startswith("#")}
    grown = {s for s in series - series_before if "racefree_http" in s}
    assert all('route="unmatched"' in s or 'route="/metrics"' in s for s in grown), grown
    assert len(after) - len(before) < 5000


# -- 11: redirects, request ids, bounded integers -------------------------------------------


def test_a_trailing_slash_is_not_redirected_to_the_host_header(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    response = client.get(
        "/v1/agents/",
        headers={**operator_headers, "Host": "evil.example"},
        follow_redirects=False,
    )
    _problem(response, 404, "ROUTE_NOT_FOUND")
    assert "location" not in response.headers


def test_a_client_request_id_is_the_requests_id_everywhere(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    response = client.post(
        "/v1/agents",
        json={"name": "traced"},
        headers={**operator_headers, "X-Request-ID": "client-chosen-1"},
    )
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "client-chosen-1"
    with db.read() as tx:
        row = tx.one("SELECT request_id, details FROM audit_log WHERE event_type = 'AGENT_CREATED'")
    assert row is not None
    assert row["request_id"] == "client-chosen-1"
    assert "client_request_id" not in json.loads(row["details"])
    refused = client.get("/v1/agents/nope", headers={**operator_headers, "X-Request-ID": "c 2"})
    assert refused.headers["x-request-id"] == refused.json()["request_id"] == "c 2"


_CREATED_REQUEST_ID = "SELECT request_id FROM audit_log WHERE event_type = 'AGENT_CREATED'"


@pytest.mark.parametrize(
    "sent",
    ["x" * 129, " lead", "trail ", "caf\xe9", "", "a\x7fb"],
    ids=["too-long", "leading-space", "trailing-space", "latin1", "empty", "del"],
)
def test_an_unacceptable_request_id_is_replaced_by_a_generated_one(
    client: TestClient, operator_headers: dict[str, str], db: Database, sent: str
) -> None:
    response = client.post(
        "/v1/agents",
        json={"name": "traced"},
        headers={**operator_headers, "X-Request-ID": sent.encode("latin-1")},  # type: ignore[dict-item]
    )
    # a control character in a header is refused at the edge; anything else is served
    assert response.status_code in (201, 400), response.text
    generated = response.headers["x-request-id"]
    assert generated.startswith("req_") and generated != sent
    if response.status_code == 201:
        with db.read() as tx:
            assert tx.scalar(_CREATED_REQUEST_ID) == generated
    else:
        assert response.json()["request_id"] == generated


def test_the_longest_acceptable_request_id_is_kept(client: TestClient) -> None:
    sent = "~" * 128
    assert client.get("/health", headers={"X-Request-ID": sent}).headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "client_id",
    [
        b"x" * 129,  # bounded: at most 128 characters
        b"caf\xc3\xa9",  # not ASCII
        b"tab\there",  # a tab is legal in a header value, not in an id
        b" lead",  # no leading or trailing space
        b"trail ",
        b"",
    ],
)
def test_an_unacceptable_client_request_id_is_replaced_never_echoed_or_stored(
    client: TestClient,
    operator_headers: dict[str, str],
    db: Database,
    caplog: pytest.LogCaptureFixture,
    client_id: bytes,
) -> None:
    """DESIGN 6: ``X-Request-ID`` is echoed only when printable and bounded; otherwise the
    server's own id answers, and the client's goes nowhere (no header, log or audit row)."""
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/v1/agents",
        json={"name": "traced"},
        headers={**operator_headers, "X-Request-ID": client_id},  # type: ignore[dict-item]
    )
    assert response.status_code == 201, response.text
    echoed = response.headers["x-request-id"]
    assert echoed.startswith("req_") and echoed.encode() != client_id
    with db.read() as tx:
        row = tx.one("SELECT request_id, details FROM audit_log WHERE event_type = 'AGENT_CREATED'")
    assert row is not None
    assert row["request_id"] == echoed
    assert "client_request_id" not in json.loads(row["details"])
    if client_id.strip():
        sent = client_id.decode("latin-1")
        assert all(sent not in str(record.__dict__) for record in caplog.records)
        assert any(echoed in str(record.__dict__) for record in caplog.records)  # it is logged


@pytest.mark.parametrize(
    "client_id",
    ["has space", "<script>alert(1)</script>", 'quote"d', "~" * 128],
)
def test_a_printable_client_request_id_is_the_requests_id_as_sent(
    client: TestClient, operator_headers: dict[str, str], db: Database, client_id: str
) -> None:
    """DESIGN 6: any 1-128 printable ASCII id is echoed and is the id of the request's
    audit rows, as sent (one id per request, never a second one in ``details``)."""
    response = client.post(
        "/v1/agents",
        json={"name": "traced"},
        headers={**operator_headers, "X-Request-ID": client_id},
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == client_id
    with db.read() as tx:
        row = tx.one("SELECT request_id, details FROM audit_log WHERE event_type = 'AGENT_CREATED'")
    assert row is not None
    assert row["request_id"] == client_id
    assert "client_request_id" not in json.loads(row["details"])


def test_a_control_character_in_the_client_request_id_cannot_reach_a_log_line(
    client: TestClient, operator_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/v1/agents",
        json={"name": "forged"},
        headers={**operator_headers, "X-Request-ID": b"ok\x1b[2Kforged"},  # type: ignore[dict-item]
    )
    body = _problem(response, 400, "VALIDATION_ERROR")
    assert body["details"]["issues"][0]["loc"] == ["header", "X-Request-ID"]
    assert response.headers["x-request-id"] == body["request_id"]
    assert body["request_id"].startswith("req_")
    assert all("forged" not in record.getMessage() for record in caplog.records)
    assert all("\x1b" not in str(record.__dict__) for record in caplog.records)


@pytest.mark.parametrize(
    "query",
    [
        "/v1/audit-log?after_id=9223372036854775808",
        "/v1/audit-log?after_id=99999999999999999999999999",
        "/v1/audit-log?after_id=-1",
        "/v1/audit-log?limit=18446744073709551617",
        "/v1/agents?limit=99999999999999999999",
        "/v1/sessions?limit=0",
        "/v1/transactions?limit=10000000000000000000000",
    ],
)
def test_integer_query_parameters_are_bounded(
    client: TestClient, operator_headers: dict[str, str], query: str
) -> None:
    _problem(client.get(query, headers=operator_headers), 400, "VALIDATION_ERROR")


def test_the_largest_audit_cursor_is_served(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    response = client.get("/v1/audit-log?after_id=9223372036854775807", headers=operator_headers)
    assert response.status_code == 200
    assert response.json()["entries"] == []


def test_an_infinite_wait_is_400(client: TestClient, operator_headers: dict[str, str]) -> None:
    for wait in ("inf", "nan", "1e400", "301"):
        response = client.post(f"/v1/plan-groups/x/generate?wait={wait}", headers=operator_headers)
        _problem(response, 400, "VALIDATION_ERROR")


def test_the_agents_created_here_are_real(db: Database) -> None:
    # guard against a vacuous fixture: the count helper sees rows the domain writes
    with db.write() as tx:
        agents.create(tx, name="probe", now=1)
    assert _agent_count(db) == 1
