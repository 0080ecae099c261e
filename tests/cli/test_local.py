"""Local mode (the database, no server) for the commands operators asked for, and its exits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree import operators, sessions
from racefree.cli.exits import ExitCode
from racefree.client import OwnerSigner, signing
from racefree.console import sessions as console_sessions
from racefree.runtime import Runtime
from racefree.settings import Settings
from racefree.transactions.submission import Request
from tests.cli.conftest import Result, Run

PASSWORD = "correct horse battery staple"


@pytest.fixture
def live(db_url: str) -> Iterator[Runtime]:
    """A runtime on the real clock, like the command's own (approval windows are real time)."""
    runtime = Runtime.open(Settings(database_url=db_url))
    operators.bootstrap(runtime.db, master_password=PASSWORD, now=runtime.clock.now())
    yield runtime
    runtime.close()


def _one_line(result: Result, code: ExitCode, catalog_code: str) -> None:
    assert result.code == code, (result.out, result.err)
    assert result.err.startswith(f"racefree: error: {catalog_code}: "), result.err
    assert result.err.count("\n") == 1 and result.out == ""


def _submit(runtime: Runtime, agent_id: str, amount: int) -> str:
    with runtime.db.write() as tx:
        issued = sessions.issue(tx, agent_id, now=runtime.clock.now(), policy=sessions.Policy())
    outcome = runtime.transactions.submit(
        issued.session.id, Request(type="TRANSFER", amount=amount, destination="shop")
    )
    assert outcome.reply.status == 202  # queued for the owner's approval
    return str(outcome.reply.body["transaction_id"])


def test_agents_transactions_and_recovery_with_an_owner_locally(
    run: Run, db_url: str, live: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ["--database-url", db_url]
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "owner.key"
    key_file.write_text(signing.b64url(key.private_bytes_raw()))
    owner = OwnerSigner(key).public_key
    agent_id = run(*db, "agents", "create", "--name", "o", "--owner-public-key", owner).json()["id"]
    assert run(*db, "deposit", agent_id, "200000").json() == {
        "agent_id": agent_id,
        "balance": "200000",
    }
    assert run(*db, "agents", "suspend", agent_id).json()["suspension_reason"] is not None
    _one_line(run(*db, "agents", "suspend", agent_id), ExitCode.CONFLICT, "AGENT_SUSPENDED")
    assert run(*db, "agents", "activate", agent_id).json()["status"] == "ACTIVE"

    first, second = (_submit(live, agent_id, 60000) for _ in range(2))
    queued = run(*db, "transactions", "list", "--status", "QUEUED").json()["transactions"]
    assert [t["transaction_id"] for t in queued] == [first, second]
    approved = run(*db, "transactions", "approve", first, "--owner-key-file", str(key_file))
    assert approved.json()["status"] == "CONFIRMED"
    assert run(*db, "transactions", "reject", second).json()["status"] == "CANCELLED"
    _one_line(run(*db, "transactions", "reject", second), ExitCode.CONFLICT, "TX_ALREADY_PROCESSED")
    _one_line(run(*db, "transactions", "show", "nope"), ExitCode.NOT_FOUND, "TX_NOT_FOUND")
    assert run(*db, "agents", "show", agent_id).json()["owner"]["state"] == "LOCKED"

    # a LOCKED owner must sign the recovery: with the key file the CLI fetches a nonce and signs
    assert run(*db, "kill-switch", "activate", "--reason", "drill").code == 0
    locked = run(*db, "deposit", agent_id, "1")
    _one_line(locked, ExitCode.UNAVAILABLE, "SYSTEM_LOCKED")
    monkeypatch.setenv("RACEFREE_MASTER_PASSWORD", PASSWORD)
    monkeypatch.setenv("RACEFREE_RECOVERY_WAIT_OWNER_S", "0")
    unsigned = run(*db, "kill-switch", "recover", "start")
    _one_line(unsigned, ExitCode.AUTH, "OWNER_AUTH_REQUIRED")
    started = run(*db, "kill-switch", "recover", "start", "--owner-key-file", str(key_file))
    assert started.json()["state"] == "RECOVERING"
    assert run(*db, "kill-switch", "recover", "complete").json()["state"] == "NORMAL"


def test_operator_tokens_locally(run: Run, db_url: str, live: Runtime) -> None:
    db = ["--database-url", db_url]
    created = run(*db, "operator", "create-token", "--label", "alice")
    token = created.out.strip()
    assert created.code == 0 and created.out == token + "\n"
    as_json = run(*db, "--json", "operator", "create-token", "--label", "bob").json()
    assert as_json["label"] == "bob" and as_json["token"].startswith("rf_op_")

    listed = run(*db, "operator", "list").json()["operators"]
    assert [o["label"] for o in listed] == ["first-start", "alice", "bob"]
    assert token not in str(listed) and as_json["token"] not in str(listed)
    with live.db.write() as tx:  # alice is signed in to the console
        console_sessions.sign_in(tx, token, now=live.clock.now())

    [alice] = [o for o in listed if o["label"] == "alice"]
    revoked = run(*db, "operator", "revoke", alice["id"]).json()
    assert (revoked["id"], revoked["label"]) == (alice["id"], "alice")
    assert revoked["revoked_at"] is not None
    with live.db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM console_sessions") == 0  # ended with the token
    labels = [o["label"] for o in run(*db, "operator", "list").json()["operators"]]
    assert labels == ["first-start", "bob"]
    _one_line(run(*db, "operator", "revoke", alice["id"]), ExitCode.NOT_FOUND, "OPERATOR_NOT_FOUND")
    audit = run(*db, "audit", "tail", "--event-type", "OPERATOR_TOKEN_REVOKED").json()
    assert [e["details"]["label"] for e in audit["entries"]] == ["alice"]


def test_every_exit_status_class_locally(
    run: Run, db_url: str, live: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ["--database-url", db_url]
    agent_id = run(*db, "agents", "create", "--name", "a").json()["id"]
    usage = run(*db, "agents", "list", "--limit", "0")
    assert usage.code == ExitCode.USAGE and usage.err.count("\n") == 1
    _one_line(run(*db, "agents", "show", "nope"), ExitCode.NOT_FOUND, "AGENT_NOT_FOUND")
    _one_line(run(*db, "deposit", agent_id, str(10**15 + 1)), ExitCode.FAILURE, "VALIDATION_ERROR")
    assert run(*db, "kill-switch", "activate", "--reason", "one").code == 0
    again = run(*db, "kill-switch", "activate", "--reason", "two")
    _one_line(again, ExitCode.CONFLICT, "KILL_SWITCH_ALREADY_ACTIVE")
    monkeypatch.setenv("RACEFREE_MASTER_PASSWORD", "wrong")
    wrong = run(*db, "kill-switch", "recover", "start")
    _one_line(wrong, ExitCode.AUTH, "INVALID_MASTER_PASSWORD")
    unmigrated = run("--database-url", f"sqlite:///{tmp_path / 'new.db'}", "agents", "list")
    assert unmigrated.code == ExitCode.FAILURE and "racefree db upgrade" in unmigrated.err
