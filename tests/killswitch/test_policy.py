"""Recovery waits are server policy stored in the database, never the caller's env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from racefree.cli.exits import ExitCode
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.killswitch import policy, recovery
from racefree.killswitch.errors import KillSwitchCode
from racefree.operators.errors import AuthCode
from racefree.runtime import Runtime
from racefree.testing import race, start_server, tally

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
    assert json.loads(shown.stdout) == {"wait_s": 60, "owner_wait_s": 1800, "stored": True}
    with db.read() as tx:
        events = [r["event_type"] for r in tx.all("SELECT event_type FROM audit_log")]
    assert events.count("SERVER_POLICY_CHANGED") == 1


def test_settings_show_stores_nothing(db_url: str, db: Database) -> None:
    """Only the server's first start or a successful recovery start stores the policy: a
    ``show`` run with a zero wait in its environment must not store that zero."""
    shown = _cli(db_url, "settings", "show", RACEFREE_RECOVERY_WAIT_S="0")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"wait_s": 0, "owner_wait_s": 1800, "stored": False}
    assert _stored(db) is None
    with db.write() as tx:
        policy.in_force(tx, policy.RecoveryPolicy(86400, 1800), now=0)  # as a first start does
    again = _cli(db_url, "settings", "show", RACEFREE_RECOVERY_WAIT_S="0")
    assert json.loads(again.stdout) == {"wait_s": 86400, "owner_wait_s": 1800, "stored": True}


# -- a refused start stores nothing; the start that succeeds stores its waits ---------------


def _stored(db: Database) -> policy.RecoveryPolicy | None:
    with db.read() as tx:
        return policy.read(tx)


def _start(db: Database, password: str, wait_s: int, *, now: int = 0) -> recovery.RecoveryStarted:
    return recovery.start(db, password, now=now, wait_s=wait_s, owner_wait_s=wait_s // 2)


def test_a_refused_recovery_start_stores_no_policy(db: Database) -> None:
    from racefree import killswitch, operators

    operators.bootstrap(db, master_password=PASSWORD, now=0)
    with pytest.raises(RacefreeError) as early:  # the right password, the wrong state
        _start(db, PASSWORD, 0)
    assert early.value.code is KillSwitchCode.KILL_SWITCH_NOT_ACTIVE
    killswitch.activate_now(db, "drill", now=0)
    with pytest.raises(RacefreeError) as wrong:
        _start(db, "nope-nope", 0)
    assert wrong.value.code is AuthCode.INVALID_MASTER_PASSWORD
    assert _stored(db) is None  # neither refusal stored the caller's (zero) waits

    assert _start(db, PASSWORD, 600).wait_seconds == 600
    assert _stored(db) == policy.RecoveryPolicy(600, 300)  # stored by the start that succeeded
    recovery.abort(db, PASSWORD, now=0)
    assert _start(db, PASSWORD, 0).wait_seconds == 600  # the stored policy, not the caller's


def test_refused_starts_over_http_store_no_policy(
    client: TestClient, operator_headers: dict[str, str], db: Database, runtime: Runtime
) -> None:
    from racefree import operators

    operators.bootstrap(db, master_password=PASSWORD, now=0)
    activated = client.post(
        "/v1/kill-switch/activate", json={"reason": "drill"}, headers=operator_headers
    )
    assert activated.status_code == 200, activated.text
    for headers, code in (
        ({"Authorization": "Bearer rf_op_wrong", "X-Master-Password": PASSWORD}, 401),
        ({**operator_headers, "X-Master-Password": "nope-nope"}, 401),
    ):
        refused = client.post("/v1/kill-switch/recovery", headers=headers)
        assert refused.status_code == code, refused.text
        assert _stored(db) is None
    started = client.post(
        "/v1/kill-switch/recovery", headers={**operator_headers, "X-Master-Password": PASSWORD}
    )
    assert started.status_code == 202, started.text
    assert _stored(db) == policy.defaults(runtime.settings)


def test_of_racing_starts_only_the_winner_stores_its_waits(db: Database) -> None:
    from racefree import killswitch, operators

    operators.bootstrap(db, master_password=PASSWORD, now=0)
    killswitch.activate_now(db, "drill", now=0)
    waits = [100, 200, 300, 400]
    outcomes = race(len(waits), lambda i: _start(db, PASSWORD, waits[i]))
    assert tally(outcomes) == {"won": 1, "RECOVERY_ALREADY_STARTED": len(waits) - 1}
    [winner] = [o.value for o in outcomes if o.error is None]
    assert _stored(db) == policy.RecoveryPolicy(winner.wait_seconds, winner.wait_seconds // 2)
