"""What an operator sees when a command goes wrong: one line on stderr, the right exit status."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from racefree import operators
from racefree.cli.exits import ExitCode
from racefree.runtime import Runtime
from racefree.settings import Settings
from tests.cli.conftest import Result, Run, racefree_process

PASSWORD = "correct horse battery staple"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEFREE_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _bootstrap(db_url: str) -> None:
    runtime = Runtime.open(Settings(database_url=db_url))
    try:
        operators.bootstrap(runtime.db, master_password=PASSWORD, now=runtime.clock.now())
    finally:
        runtime.close()


def _one_line(result: Result, code: ExitCode, starts: str) -> None:
    assert result.code == code, (result.out, result.err)
    assert result.err.startswith(f"racefree: error: {starts}"), result.err
    assert result.err.count("\n") == 1 and result.out == "", (result.out, result.err)


def test_a_local_command_prints_no_log_lines_on_stderr(db_url: str) -> None:
    """The domain logs its events; a command's stderr is for its one error line only."""
    _bootstrap(db_url)
    db = ["--database-url", db_url]
    activated = racefree_process(*db, "kill-switch", "activate", "--reason", "drill", env=_env())
    assert activated.code == 0 and activated.err == "", activated.err
    assert racefree_process(*db, "--json", "kill-switch", "status").json()["state"] == "ACTIVATED"
    wrong = racefree_process(
        *db, "kill-switch", "recover", "start", env={**_env(), "RACEFREE_MASTER_PASSWORD": "no"}
    )
    _one_line(wrong, ExitCode.AUTH, "INVALID_MASTER_PASSWORD: ")


def test_a_database_that_cannot_be_opened_is_one_line(run: Run, tmp_path: Path) -> None:
    missing_dir = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    _one_line(run("--database-url", missing_dir, "db", "upgrade"), ExitCode.UNAVAILABLE, "cannot ")
    a_directory = f"sqlite:///{tmp_path}"
    for command in (("agents", "list"), ("db", "upgrade")):
        _one_line(run("--database-url", a_directory, *command), ExitCode.UNAVAILABLE, "cannot ")
    # a URL that cannot be used exits as tests/test_cli.py pins for an unsupported one
    _one_line(run("--database-url", "not a url", "agents", "list"), ExitCode.UNAVAILABLE, "")
    secret = run("--database-url", "postgresql://u:hunter2@[::1/x", "agents", "list")
    _one_line(secret, ExitCode.UNAVAILABLE, "the database URL cannot be parsed")
    assert "hunter2" not in secret.err


def test_a_read_on_a_missing_sqlite_file_creates_no_database(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    for command in (("agents", "list"), ("settings", "show"), ("audit", "verify")):
        result = run("--database-url", f"sqlite:///{path}", *command)
        assert result.code == ExitCode.FAILURE and "racefree db upgrade" in result.err
        assert result.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    assert run("--database-url", f"sqlite:///{path}", "db", "upgrade").code == 0
    assert run("--database-url", f"sqlite:///{path}", "agents", "list").json()["agents"] == []


def test_a_validation_error_says_which_field(run: Run, db_url: str) -> None:
    result = run("--database-url", db_url, "agents", "create", "--name", " ")
    _one_line(result, ExitCode.FAILURE, "VALIDATION_ERROR: ")
    assert "name" in result.err.split("VALIDATION_ERROR: ", 1)[1], result.err


def test_local_mode_refuses_what_the_api_refuses(run: Run, db_url: str) -> None:
    """The API's body checks (lengths, control characters) hold in local mode too."""
    db = ["--database-url", db_url]
    for argv in (
        ("agents", "create", "--name", "x" * 201),
        ("agents", "create", "--name", "evil\x1b[31m"),
        ("agents", "create", "--name", "ok", "--owner-public-key", "not-a-key"),
        ("operator", "create-token", "--label", "\x1b]0;title\x07"),
        ("operator", "create-token", "--label", ""),
        ("kill-switch", "activate", "--reason", "x" * 1001),
        ("kill-switch", "activate", "--reason", "bell\x07"),
        ("rules", "set", "HOURLY_RATE", "--param", "max_tx_per_hour=5", "--agent-id", "x" * 37),
    ):
        _one_line(run(*db, *argv), ExitCode.FAILURE, "VALIDATION_ERROR: ")
    assert run(*db, "agents", "list").json()["agents"] == []
    assert run(*db, "kill-switch", "status").json()["state"] == "NORMAL"
    labels = [o["label"] for o in run(*db, "operator", "list").json()["operators"]]
    assert labels == []
    # free text keeps tab and newline, as in the API
    activated = run(*db, "kill-switch", "activate", "--reason", "line one\nline\ttwo")
    assert activated.code == 0, activated.err


def test_master_password_rotate_with_json_prints_json(
    run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bootstrap(db_url)
    monkeypatch.setenv("RACEFREE_MASTER_PASSWORD", PASSWORD)
    monkeypatch.setenv("RACEFREE_NEW_MASTER_PASSWORD", "a new one, long enough")
    rotated = run("--database-url", db_url, "--json", "master-password", "rotate")
    assert rotated.json() == {"rotated": True, "master_password": None}
