"""Credentials: first-start secrets only once the port is bound, master-password
rotation, and a warning when RACEFREE_MASTER_PASSWORD is set after the first start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from racefree import operators
from racefree.cli.exits import ExitCode
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.testing import start_server

PASSWORD = "correct horse battery staple"


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEFREE_")}
    return {**env, "RACEFREE_DATABASE_URL": db_url, **extra}


@pytest.mark.server
def test_a_port_in_use_prints_and_stores_no_credentials(
    db_url: str, db: Database, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "racefree", "serve"],
            env=_env(db_url, RACEFREE_PORT=str(port), RACEFREE_WORKERS_ENABLED="false"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == ExitCode.FAILURE
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "operator token" not in run.stdout and "master password" not in run.stdout
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM operators") == 0
        assert operators.master_password_hash(tx) is None


@pytest.mark.server
def test_master_password_set_after_first_start_is_ignored_with_a_warning(
    db_url: str, db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    operators.bootstrap(db, master_password="the first one, kept", now=clock.now())
    server = start_server(db_url, tmp_path, master_password=PASSWORD)
    try:
        assert server.operator_token == ""  # nothing new to show
    finally:
        server.stop()
    assert "RACEFREE_MASTER_PASSWORD is set but is ignored" in server.log_path.read_text()
    with db.read() as tx:
        assert operators.check_master_password(tx, "the first one, kept")
        assert not operators.check_master_password(tx, PASSWORD)


def _rotate(db_url: str, current: str, new: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "racefree", "master-password", "rotate"],
        env=_env(db_url, RACEFREE_MASTER_PASSWORD=current, RACEFREE_NEW_MASTER_PASSWORD=new),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rotating_the_master_password_needs_the_current_one(
    db_url: str, db: Database, clock: ManualClock
) -> None:
    operators.bootstrap(db, master_password=PASSWORD, now=clock.now())
    wrong = _rotate(db_url, "not the password", "a brand new password")
    assert wrong.returncode == ExitCode.AUTH and "INVALID_MASTER_PASSWORD" in wrong.stderr
    short = _rotate(db_url, PASSWORD, "short")
    assert short.returncode == ExitCode.FAILURE and "VALIDATION_ERROR" in short.stderr
    done = _rotate(db_url, PASSWORD, "a brand new password")
    assert done.returncode == 0, done.stderr
    with db.read() as tx:
        assert operators.check_master_password(tx, "a brand new password")
        assert not operators.check_master_password(tx, PASSWORD)
        events = [r["event_type"] for r in tx.all("SELECT event_type FROM audit_log")]
    assert events.count("MASTER_PASSWORD_ROTATED") == 1
