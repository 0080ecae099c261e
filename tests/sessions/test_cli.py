"""``racefree agents list|create`` and ``racefree sessions list|revoke|cleanup``."""

from __future__ import annotations

import json

import pytest

from racefree import sessions
from racefree.core.settings import Settings
from racefree.runtime import Runtime
from tests.test_cli import racefree


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_agents_and_sessions_from_the_command_line(db_url: str) -> None:
    db = ["--database-url", db_url]
    created = racefree("agents", "create", "--name", "cli-bot", *db)
    assert created.returncode == 0, created.stderr
    [agent] = _lines(created.stdout)
    assert (agent["name"], agent["status"], agent["balance"]) == ("cli-bot", "ACTIVE", 0)
    listed = racefree("agents", "list", "--status", "ACTIVE", *db)
    assert [a["id"] for a in _lines(listed.stdout)] == [agent["id"]]

    runtime = Runtime.open(Settings(database_url=db_url))
    try:
        with runtime.db.write() as tx:
            issued = sessions.issue(
                tx, agent["id"], now=runtime.clock.now(), policy=sessions.Policy()
            )
    finally:
        runtime.close()

    listed = racefree("sessions", "list", "--active", *db)
    [row] = _lines(listed.stdout)
    assert row["id"] == issued.session.id and issued.token not in listed.stdout
    revoked = racefree("sessions", "revoke", issued.session.id, *db)
    assert json.loads(revoked.stdout)["session_id"] == issued.session.id
    again = racefree("sessions", "revoke", issued.session.id, *db)
    assert again.returncode == 1
    assert again.stderr.startswith("racefree: error: SESSION_ALREADY_REVOKED")
    assert again.stderr.count("\n") == 1
    assert racefree("sessions", "list", "--active", *db).stdout == ""
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
    assert result.returncode == 0 and "usage: racefree" in result.stdout
