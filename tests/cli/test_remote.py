"""Remote mode against a real server (both engines): the commands, their output, exit statuses."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree.cli.exits import ExitCode
from racefree.cli.options import TOKEN_ENV, URL_ENV
from racefree.client import Client, OwnerSigner, signing
from racefree.testing import Server, free_port
from tests.cli.conftest import Result, Run, remote


def _one_line(result: Result, code: ExitCode, catalog_code: str) -> None:
    assert result.code == code, (result.out, result.err)
    assert result.err.startswith(f"racefree: error: {catalog_code}: "), result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.out == ""


def test_kill_switch_activate_and_agents_list_through_a_server(
    run: Run, served: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = remote(served)
    agent = run(*url, "agents", "create", "--name", "bot").json()
    assert run(*url, "deposit", agent["id"], "500").json() == {
        "agent_id": agent["id"],
        "balance": "500",
    }

    activated = run(
        "--url", served.base_url, "--token", served.operator_token,
        "kill-switch", "activate", "--reason", "x",
    )  # fmt: skip
    assert activated.json()["state"] == "ACTIVATED"
    assert activated.json()["agents_suspended"] == 1

    listed = run("agents", "list", "--json", *url)  # the global options after the command
    [row] = listed.json()["agents"]
    assert (row["id"], row["status"], row["balance"]) == (agent["id"], "SUSPENDED", "500")

    monkeypatch.setenv(URL_ENV, served.base_url)
    monkeypatch.setenv(TOKEN_ENV, served.operator_token)
    status = run("kill-switch", "status").json()
    assert (status["state"], status["reason"]) == ("ACTIVATED", "x")
    assert status["actor"] == "operator:first-start"

    monkeypatch.setenv("RACEFREE_MASTER_PASSWORD", served.master_password)
    started = run("kill-switch", "recover", "start").json()
    assert (started["state"], started["wait_seconds"]) == ("RECOVERING", 0)
    assert run("kill-switch", "recover", "complete").json() == {
        "state": "NORMAL",
        "agents_reactivated": 1,
    }
    [entry] = run("audit", "tail", "--event-type", "KILL_SWITCH_ACTIVATED").json()["entries"]
    assert entry["details"]["reason"] == "x"


def test_every_exit_status_class_through_a_server(run: Run, served: Server) -> None:
    url = remote(served)
    agent = run(*url, "agents", "create", "--name", "bot").json()

    usage = run(*url, "agents", "show")  # its argument is missing
    assert usage.code == ExitCode.USAGE
    assert usage.err.count("\n") == 1 and "Missing argument" in usage.err
    _one_line(run(*url, "agents", "show", "no-such-agent"), ExitCode.NOT_FOUND, "AGENT_NOT_FOUND")
    bad_token = ["--url", served.base_url, "--token", "rf_op_wrong"]
    _one_line(run(*bad_token, "agents", "list"), ExitCode.AUTH, "INVALID_TOKEN")
    _one_line(run("--url", served.base_url, "agents", "list"), ExitCode.AUTH, "AUTH_REQUIRED")
    too_much = run(*url, "deposit", agent["id"], str(10**15 + 1))
    _one_line(too_much, ExitCode.FAILURE, "VALIDATION_ERROR")

    assert run(*url, "kill-switch", "activate", "--reason", "first").code == 0
    again = run(*url, "kill-switch", "activate", "--reason", "second")
    _one_line(again, ExitCode.CONFLICT, "KILL_SWITCH_ALREADY_ACTIVE")
    locked = run(*url, "deposit", agent["id"], "5")  # refused while the switch is engaged
    _one_line(locked, ExitCode.UNAVAILABLE, "SYSTEM_LOCKED")
    wrong = run(*url, "kill-switch", "activate", "--reason", "r", "--actor", "me")
    assert wrong.code == ExitCode.USAGE and "--actor is for local mode" in wrong.err


def test_no_server_at_the_url_is_unavailable_in_one_line(run: Run) -> None:
    result = run("--url", f"http://127.0.0.1:{free_port()}", "--token", "t", "agents", "list")
    assert result.code == ExitCode.UNAVAILABLE
    assert result.err.startswith("racefree: error: no answer from the server: GET /v1/agents")
    assert result.err.count("\n") == 1


#: commands whose JSON and table must be the same in both modes, after _activity()
SAME_OUTPUT = [
    ("agents", "list"),
    ("kill-switch", "status"),
    ("sessions", "list"),
    ("transactions", "list"),
    ("audit", "tail", "--limit", "50"),
]


def test_local_and_remote_print_the_same(run: Run, served: Server, db_url: str) -> None:
    agent_id, session_id = _activity(served)
    local = ["--database-url", db_url]
    commands = [*SAME_OUTPUT, ("agents", "show", agent_id), ("sessions", "list", "--active")]
    for command in commands:
        for shape in ("--json", "--table"):
            here = run(*local, shape, *command)
            there = run(*remote(served), shape, *command)
            assert here.code == there.code == 0, (command, here.err, there.err)
            assert here.out == there.out, command
    assert session_id in run(*local, "sessions", "list").out
    again = ("sessions", "revoke", session_id)
    assert run(*remote(served), *again).code == 0
    assert run(*local, *again).err == run(*remote(served), *again).err


def _activity(served: Server) -> tuple[str, str]:
    """Agents, a deposit, a suspension, a session and a transaction, through the API."""
    with served.api() as api:
        agent = api.agents.create("spender")
        api.agents.deposit(agent.id, 5000)
        api.agents.suspend(api.agents.create("idle").id)
        session = api.sessions.open(agent.id)
    with Client(served.base_url, session.token) as me:
        assert me.transactions.submit(250, "shop").status == "CONFIRMED"
    return agent.id, session.session_id


def test_agents_sessions_and_transactions_through_a_server(
    run: Run, served: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = remote(served)
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "owner.key"
    key_file.write_text(signing.b64url(key.private_bytes_raw()) + "\n")
    owner = OwnerSigner(key).public_key
    agent = run(*url, "agents", "create", "--name", "owned", "--owner-public-key", owner).json()
    agent_id = agent["id"]
    assert agent["owner"] == {"public_key": owner, "state": "GRACE"}
    assert run(*url, "agents", "deposit", agent_id, "200000").json()["balance"] == "200000"
    assert run(*url, "agents", "suspend", agent_id).json()["status"] == "SUSPENDED"
    _one_line(run(*url, "agents", "suspend", agent_id), ExitCode.CONFLICT, "AGENT_SUSPENDED")
    assert run(*url, "agents", "activate", agent_id).json()["status"] == "ACTIVE"
    assert run(*url, "agents", "show", agent_id).json()["balance"] == "200000"

    with served.api() as api:
        session = api.sessions.open(agent_id)
    with Client(served.base_url, session.token) as me:
        first, second = (me.transactions.submit(60000, "shop") for _ in range(2))
    assert (first.status, first.tier) == ("QUEUED", "APPROVAL")
    queued = run(*url, "transactions", "list", "--status", "QUEUED").json()["transactions"]
    assert {t["transaction_id"] for t in queued} == {first.transaction_id, second.transaction_id}

    approve = ["transactions", "approve", first.transaction_id]
    assert run(*url, *approve).code == ExitCode.USAGE  # whose approval? none given
    approved = run(*url, *approve, "--owner-key-file", str(key_file)).json()
    assert approved["status"] == "CONFIRMED"
    rejected = run(*url, "transactions", "reject", second.transaction_id).json()
    assert rejected["status"] == "CANCELLED"
    _one_line(
        run(*url, "transactions", "reject", second.transaction_id),
        ExitCode.CONFLICT,
        "TX_ALREADY_PROCESSED",
    )
    shown = run(*url, "transactions", "show", first.transaction_id).json()
    assert (shown["status"], shown["amount"]) == ("CONFIRMED", "60000")
    assert run(*url, "agents", "show", agent_id).json()["owner"]["state"] == "LOCKED"

    [listed] = run(*url, "sessions", "list", "--agent-id", agent_id).json()["sessions"]
    assert listed["session_id"] == session.session_id and session.token not in str(listed)
    revoked = run(*url, "sessions", "revoke", session.session_id).json()
    assert revoked["session_id"] == session.session_id
    _one_line(
        run(*url, "sessions", "revoke", session.session_id),
        ExitCode.CONFLICT,
        "SESSION_ALREADY_REVOKED",
    )

    # the owner is LOCKED now: recovery needs its signature, over the kill switch's own nonce
    assert run(*url, "kill-switch", "activate", "--reason", "drill").code == 0
    recover = ["kill-switch", "recover", "start"]
    monkeypatch.setenv("RACEFREE_MASTER_PASSWORD", served.master_password)
    _one_line(run(*url, *recover), ExitCode.AUTH, "OWNER_AUTH_REQUIRED")
    started = run(*url, *recover, "--owner-key-file", str(key_file)).json()
    assert started["state"] == "RECOVERING"
    assert run(*url, "kill-switch", "recover", "complete").json()["state"] == "NORMAL"


def test_operator_commands_through_a_server(run: Run, served: Server) -> None:
    """``/v1/operators`` comes with issue 15: until a server has it, the commands say so."""
    url = remote(served)
    probe = httpx.get(served.base_url + "/v1/operators", headers=served.operator_headers())
    if probe.status_code == 404:
        _one_line(run(*url, "operator", "list"), ExitCode.NOT_FOUND, "ROUTE_NOT_FOUND")
        _one_line(run(*url, "operator", "create-token"), ExitCode.NOT_FOUND, "ROUTE_NOT_FOUND")
        return
    created = run(*url, "operator", "create-token", "--label", "remote")
    token = created.out.strip()
    assert created.code == 0 and created.out == token + "\n" and token.startswith("rf_op_")
    listed = run(*url, "operator", "list").json()["operators"]
    [mine] = [o for o in listed if o["label"] == "remote"]
    assert run(*url, "operator", "revoke", mine["id"]).json()["id"] == mine["id"]
    _one_line(run(*url, "operator", "revoke", mine["id"]), ExitCode.NOT_FOUND, "OPERATOR_NOT_FOUND")
