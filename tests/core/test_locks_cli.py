"""``racefree locks list``: the held leases, as JSON lines a script can read."""

from __future__ import annotations

import json
import subprocess
import sys

from racefree.core.clock import SystemClock
from racefree.core.db import Database
from racefree.core.locks import LeaseLocks


def _racefree(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "racefree", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_locks_list_prints_the_unexpired_leases_as_json(db: Database, db_url: str) -> None:
    locks = LeaseLocks(db, SystemClock())  # the command runs on the real clock
    lease = locks.acquire("plan-group:1", holder="worker-1", ttl_s=600)
    locks.acquire("other:1", holder="worker-2", ttl_s=600)
    result = _racefree("locks", "list", "--prefix", "plan-group:", "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    (held,) = json.loads(line)["locks"]
    assert held == {
        "key": "plan-group:1",
        "holder": "worker-1",
        "token": lease.token,
        "acquired_at_ms": lease.acquired_at_ms,
        "expires_at_ms": lease.expires_at_ms,
        "ttl_ms": 600_000,
    }


def test_locks_list_has_help() -> None:
    result = _racefree("locks", "list", "--help")
    assert result.returncode == 0
    assert "Usage: racefree locks list" in result.stdout
