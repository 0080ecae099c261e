"""``racefree agents list|create`` and ``racefree sessions list|revoke|cleanup``."""

from __future__ import annotations

import json

import pytest

from racefree import sessions
from racefree.cli.exits import ExitCode
from racefree.runtime import Runtime
from racefree.settings import Settings
from tests.test_cli import racefree


def _json(stdout: str) -> dict:
    """Off a terminal the CLI prints the API's JSON: one document."""
    return json.loads(stdout)


def test_agents_and_sessions_from_the_command_line(db_url: str) -> None:
    db = ["--database-url", db_url]
    created = racefree("agents", "create", "--name", "cli-bot", *db)
    assert created.returncode == 0, created.stderr
    agent = _json(created.stdout)
    assert (agent["name"], agent["status"], agent["balance"]) == ("cli-bot", "ACTIVE", "0")
    listed = racefree("agents", "list", "--status", "ACTIVE", *db)
    assert [a["id"] for a in _json(listed.stdout)["agents"]] == [agent["id"]]

    runtime = Runtime.open(Settings(database_url=db_url))
    try:
        with runtime.db.write() as tx:
            issued = sessions.issue(
                tx, agent["id"], now=runtime.clock.now(), policy=sessions.Policy()
            )
    finally:
        runtime.close()

    listed = racefree("sessions", "list", "--active", *db)
    [row] = _json(listed.stdout)["sessions"]
    assert row["session_id"] == issued.session.id and issued.token not in listed.stdout
    revoked = racefree("sessions", "revoke", issued.session.id, *db)
    assert json.loads(revoked.stdout)["session_id"] == issued.session.id
    again = racefree("sessions", "revoke", issued.session.id, *db)
    assert again.returncode == ExitCode.CONFLICT
    assert again.stderr.startswith("racefree: error: SESSION_ALREADY_REVOKED")
    assert again.stderr.count("\n") == 1
    assert _json(racefree("sessions", "list", "--active", *db).stdout)["sessions"] == []
    cleanup = racefree("sessions", "cleanup", *db)
    assert cleanup.stdout == "deleted 0 expired sessions\n"


@pytest.mark.parametrize(
    "command",
    [
        ["agents"],
        ["agents", "create"],
        ["agents", "list"],
        ["sessions"],
        ["sessions", "list"],
        ["sessions", "revoke"],
        ["sessions", "cleanup"],
    ],
)
def test_every_agents_and_sessions_command_has_help(command: list[str]) -> None:
    result = racefree(*command, "--help")
    assert result.returncode == 0 and f"Usage: racefree {' '.join(command)}" in result.stdout
