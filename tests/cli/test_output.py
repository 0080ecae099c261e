"""Tables on a terminal, the API's JSON for scripts; /v1/operators through its contract."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import httpx
import pytest

from racefree.cli import modes
from racefree.cli.exits import ExitCode
from racefree.client import Client
from tests.cli.conftest import Run


def _on_a_terminal(*argv: str) -> str:
    """``racefree *argv`` with its stdout on a pseudo-terminal; what it printed there."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "racefree", *argv],
        stdout=follower,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_terminal_gets_tables_and_a_pipe_gets_json(run: Run, db_url: str) -> None:
    agent = run("agents", "create", "--name", "tabled", "--database-url", db_url).json()
    shown = _on_a_terminal("agents", "list", "--database-url", db_url)
    header, row = shown.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "BALANCE", "OWNER", "SUSPENSION", "CREATED"]
    assert row.split()[:6] == [agent["id"], "tabled", "ACTIVE", "0", "NONE", "-"]

    fields = _on_a_terminal("kill-switch", "status", "--database-url", db_url).splitlines()
    assert fields[0].split() == ["state", "NORMAL"]
    assert fields[-1].split() == ["master_password_locked", "no"]

    pretty = _on_a_terminal("agents", "show", agent["id"], "--json", "--database-url", db_url)
    assert json.loads(pretty) == agent and pretty.startswith('{\n  "id": ')

    piped = run("agents", "list", "--database-url", db_url)  # stdout is not a terminal here
    # the list routes' one convention (racefree.http.paging): the cursor is the last id
    assert json.loads(piped.out) == {"agents": [agent], "next_after_id": agent["id"]}
    assert piped.out.count("\n") == 1  # one document on one line
    assert list(agent) == [
        "id", "name", "status", "suspension_reason", "balance", "owner", "created_at", "updated_at",
    ]  # fmt: skip


class StubServer:
    """``/v1/operators`` as DESIGN 11 has it (the routes come with issue 15), in memory."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.operators = [
            {"id": "op-1", "label": "first-start", "created_at": "2026-01-01T00:00:00Z"}
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["Authorization"] == "Bearer rf_op_stub"
        route = (request.method, request.url.path)
        if route == ("GET", "/v1/operators"):
            return httpx.Response(200, json={"operators": self.operators})
        if route == ("POST", "/v1/operators"):
            label = json.loads(request.content)["label"]
            made = {"id": "op-2", "label": label, "created_at": "2026-01-02T00:00:00Z"}
            self.operators.append(made)
            return httpx.Response(201, json={**made, "token": "rf_op_new"})
        if request.method == "DELETE" and request.url.path == "/v1/operators/op-2":
            self.operators.pop()
            return httpx.Response(200, json={"id": "op-2", "label": "ci", "revoked_at": None})
        problem = {
            "code": "OPERATOR_NOT_FOUND",
            "status": 404,
            "detail": "no operator token has this id",
        }
        return httpx.Response(
            404, json=problem, headers={"content-type": "application/problem+json"}
        )


def test_operator_commands_speak_the_contract_of_v1_operators(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = StubServer()

    def stubbed(base_url: str, token: str | None) -> Client:
        http = httpx.Client(base_url=base_url, transport=httpx.MockTransport(stub))
        return Client(base_url, token, http=http, retry=modes.RETRY)

    monkeypatch.setattr(modes, "make_client", stubbed)
    url = ["--url", "http://stub", "--token", "rf_op_stub"]
    created = run(*url, "operator", "create-token", "--label", "ci")
    assert (created.code, created.out) == (0, "rf_op_new\n")
    assert json.loads(stub.requests[-1].content) == {"label": "ci"}
    listed = run(*url, "operator", "list", "--table")
    assert [line.split()[:2] for line in listed.out.splitlines()] == [
        ["ID", "LABEL"], ["op-1", "first-start"], ["op-2", "ci"],
    ]  # fmt: skip
    assert run(*url, "operator", "revoke", "op-2").json()["id"] == "op-2"
    missing = run(*url, "operator", "revoke", "op-9")
    assert missing.code == ExitCode.NOT_FOUND
    assert missing.err == "racefree: error: OPERATOR_NOT_FOUND: no operator token has this id\n"
    assert [(r.method, r.url.path) for r in stub.requests] == [
        ("POST", "/v1/operators"),
        ("GET", "/v1/operators"),
        ("DELETE", "/v1/operators/op-2"),
        ("DELETE", "/v1/operators/op-9"),
    ]
