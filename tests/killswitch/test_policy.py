"""Recovery waits are server policy stored in the database, never the caller's env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from racefree.cli.exits import ExitCode
from racefree.core.db import Database
from racefree.killswitch import policy
from racefree.testing import start_server

PASSWORD = "correct horse battery staple"


def _cli(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RACEFREE_")}
    return subprocess.run(
        [sys.executable, "-m", "racefree", *args],
        env={**base, "RACEFREE_DATABASE_URL": db_url, "RACEFREE_MASTER_PASSWORD": PASSWORD, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.server
def test_a_zero_wait_in_the_cli_environment_does_not_shorten_the_servers_wait(
    db_url: str, db: Database, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path, master_password=PASSWORD)  # first start: 24 h
    try:
        with db.read() as tx:
            assert policy.read(tx) == policy.RecoveryPolicy(86400, 1800)
        assert _cli(db_url, "kill-switch", "activate", "--reason", "drill").returncode == 0
        impatient = {"RACEFREE_RECOVERY_WAIT_S": "0", "RACEFREE_RECOVERY_WAIT_OWNER_S": "0"}
        started = _cli(db_url, "kill-switch", "recover", "start", **impatient)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["wait_seconds"] == 86400
        completed = _cli(db_url, "kill-switch", "recover", "complete", **impatient)
        assert completed.returncode == ExitCode.CONFLICT  # 409: the CLI's conflict status
        assert "RECOVERY_WAIT_REQUIRED" in completed.stderr
        with server.client() as http:  # the server says the same
            state = http.get("/v1/kill-switch", headers=server.operator_headers()).json()
        assert state["state"] == "RECOVERING"
    finally:
        server.stop()


def test_the_policy_changes_only_with_the_master_password(db_url: str, db: Database) -> None:
    from racefree import operators

    operators.bootstrap(db, master_password=PASSWORD, now=0)
    wrong = _cli(
        db_url, "settings", "set", "recovery_wait_s", "60", RACEFREE_MASTER_PASSWORD="nope-nope"
    )
    assert wrong.returncode == ExitCode.AUTH and "INVALID_MASTER_PASSWORD" in wrong.stderr
    changed = _cli(db_url, "settings", "set", "recovery_wait_s", "60")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["wait_s"] == 60
    shown = _cli(db_url, "settings", "show", RACEFREE_RECOVERY_WAIT_S="0")
    assert json.loads(shown.stdout) == {"wait_s": 60, "owner_wait_s": 1800}
    with db.read() as tx:
        events = [r["event_type"] for r in tx.all("SELECT event_type FROM audit_log")]
    assert events.count("SERVER_POLICY_CHANGED") == 1
