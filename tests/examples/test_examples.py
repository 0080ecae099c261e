"""The examples run against a real server, as a user would run them (both engines)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from racefree.client import Client
from racefree.testing import Server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.server

#: the global HOURLY_RATE a first start seeds (docs/events.md), and the agent loop's own
SEEDED_HOURLY_RATE = 50
LOOP_HOURLY_RATE = 20_000


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=EXAMPLES
    )


def test_the_agent_loop_spends_from_eight_threads_across_renewals(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    server = start({"RACEFREE_SESSION_EXPIRES_IN": "4"})  # renewable every 2 s
    token_file = tmp_path / "agent.token"
    provisioned = _run(
        str(EXAMPLES / "provision_agent.py"),
        f"--url={server.base_url}",
        f"--token={server.operator_token}",
        "--name=looper",
        "--deposit=1000000",
        f"--max-tx-per-hour={LOOP_HOURLY_RATE}",
        f"--token-file={token_file}",
    )
    assert provisioned.returncode == 0, provisioned.stderr
    setup = json.loads(provisioned.stdout)
    assert token_file.stat().st_mode & 0o777 == 0o600
    agent_id = setup["agent_id"]
    # its own hourly rate replaces the seeded global one; the other seeded rules still apply
    assert setup["auto_stop"]["HOURLY_RATE"] == {
        "scope": "agent",
        "action": "SUSPEND_AGENT",
        "max_tx_per_hour": LOOP_HOURLY_RATE,
    }
    assert setup["auto_stop"]["CONSECUTIVE_FAILURES"]["scope"] == "global"
    result = _run(
        str(EXAMPLES / "agent_loop.py"),
        f"--url={server.base_url}",
        f"--token-file={token_file}",
        "--threads=8",
        "--renewals=2",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["failures"] == []
    assert summary["calls"] > SEEDED_HOURLY_RATE  # the global rule would have stopped it
    renewals = summary["renewals"]  # 2, or one more if a slow machine let a period pass
    assert renewals >= 2 and summary["renewal_count"] == renewals
    with server.api() as ops:
        renewed = ops.audit.all(event_type="SESSION_RENEWED")
        reused = ops.audit.all(event_type="SESSION_TOKEN_REUSED")
        stopped = ops.audit.all(event_type="AUTO_STOP_SUSPEND")
        agent = ops.agents.get(agent_id)
        (seeded,) = [
            r for r in ops.auto_stop.list(global_only=True).rules if r.type == "HOURLY_RATE"
        ]
    assert (len(renewed), reused, stopped) == (renewals, [], [])  # one renewal per rotation
    assert agent.status == "ACTIVE"
    assert seeded.params == {"max_tx_per_hour": SEEDED_HOURLY_RATE}  # untouched for the others
    assert int(summary["spent"]) == 1_000_000 - int(agent.balance)  # spent what was debited
    # the persisted token is the live one
    with Client(server.base_url, token_file.read_text()) as me:
        assert me.sessions.current().renewal_count == renewals


def test_the_operator_drill_activates_and_recovers(start: Callable[..., Server]) -> None:
    server = start({"RACEFREE_RECOVERY_WAIT_S": "2"})
    with server.api() as ops:
        agent = ops.agents.create("bystander")
    result = _run(
        str(EXAMPLES / "operator_drill.py"),
        f"--url={server.base_url}",
        f"--token={server.operator_token}",
        f"--master-password={server.master_password}",
        "--reason=quarterly drill",
    )
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(s["step"], s["state"]) for s in steps] == [
        ("activate", "ACTIVATED"),
        ("start_recovery", "RECOVERING"),
        ("complete_recovery", "NORMAL"),
        ("status", "NORMAL"),
    ]
    assert steps[0]["agents_suspended"] == 1 and steps[2]["agents_reactivated"] == 1
    with server.api() as ops:
        assert ops.agents.get(agent.id).status == "ACTIVE"  # re-activated by the recovery
        assert ops.kill_switch.status().state == "NORMAL"


def test_the_users_race_test_passes_with_the_plugin(db_url: str, tmp_path: Path) -> None:
    result = _run(
        "-m",
        "pytest",
        str(EXAMPLES / "test_shop.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        f"--rootdir={EXAMPLES}",
        f"--racefree-database-url={db_url}",
        f"--basetemp={tmp_path / 'pytest'}",
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
