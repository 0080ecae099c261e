"""``racefree kill-switch``: the same machine, driven from the command line against the database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from racefree import cli, operators
from racefree.cli.exits import ExitCode
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from tests import factory

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def environment(
    db: Database, clock: ManualClock, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    operators.bootstrap(db, master_password=PASSWORD, now=clock.now())
    for name in ("RACEFREE_MASTER_PASSWORD", "RACEFREE_RECOVERY_WAIT_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RACEFREE_DATABASE_URL", db_url)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_activate_recover_and_status_from_the_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    clock: ManualClock,
) -> None:
    w = factory.world(db, now=clock.now())
    code, result, _ = _run(capsys, "kill-switch", "activate", "--reason", "from the shell")
    assert code == 0
    assert result["state"] == "ACTIVATED"
    assert result["sessions_revoked"] == len(w.live_sessions)
    code, status, _ = _run(capsys, "kill-switch", "status")
    assert (code, status["actor"], status["reason"]) == (0, "cli", "from the shell")

    code, _, err = _run(capsys, "kill-switch", "activate", "--reason", "again")
    assert code == ExitCode.CONFLICT
    assert err.startswith("racefree: error: KILL_SWITCH_ALREADY_ACTIVE")
    assert err.count("\n") == 1

    monkeypatch.setenv("RACEFREE_MASTER_PASSWORD", PASSWORD)
    monkeypatch.setenv("RACEFREE_RECOVERY_WAIT_S", "0")
    code, started, _ = _run(capsys, "kill-switch", "recover", "start")
    assert (code, started["state"], started["wait_seconds"]) == (0, "RECOVERING", 0)
    code, status, _ = _run(capsys, "kill-switch", "status")
    assert status["state"] == "RECOVERING"
    code, done, _ = _run(capsys, "kill-switch", "recover", "complete")
    assert done == {"state": "NORMAL", "agents_reactivated": len(w.active_agents)}


def test_a_wrong_master_password_from_the_environment_is_one_line_and_exit_auth(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(capsys, "kill-switch", "activate", "--reason", "x")
    monkeypatch.setenv("RACEFREE_MASTER_PASSWORD", "wrong")
    code, _, err = _run(capsys, "kill-switch", "recover", "abort")
    assert code == ExitCode.AUTH
    assert err.startswith("racefree: error: INVALID_MASTER_PASSWORD")
    assert err.count("\n") == 1


def test_without_a_password_or_a_terminal_the_cli_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _run(capsys, "kill-switch", "recover", "start")
    assert code == ExitCode.USAGE
    assert "RACEFREE_MASTER_PASSWORD" in err


def test_every_kill_switch_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["kill-switch"],
        ["kill-switch", "status"],
        ["kill-switch", "activate"],
        ["kill-switch", "recover"],
        ["kill-switch", "nonce"],
    ):
        assert cli.main([*argv, "--help"]) == 0
        shown = " ".join(capsys.readouterr().out.split())
        assert f"Usage: racefree {' '.join(argv)}" in shown
        assert "database directly" in shown and "--url" in shown
