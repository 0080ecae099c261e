"""Global options before or after the command, from the flags or the environment."""

from __future__ import annotations

import pytest

from racefree.cli.app import build
from racefree.cli.exits import ExitCode
from racefree.cli.options import URL_ENV, hoist
from tests.cli.conftest import Run

COMMAND = build()


@pytest.mark.parametrize(
    ("given", "hoisted"),
    [
        (["agents", "list", "--json"], ["--json", "agents", "list"]),
        (
            ["agents", "list", "--url", "U", "--limit", "5", "--token=T"],
            ["--url", "U", "--token=T", "agents", "list", "--limit", "5"],
        ),
        (
            ["--table", "kill-switch", "activate", "--reason", "--json", "--database-url=D"],
            ["--table", "--database-url=D", "kill-switch", "activate", "--reason", "--json"],
        ),
        (
            ["kill-switch", "activate", "--reason=--url"],
            ["kill-switch", "activate", "--reason=--url"],
        ),
        (["sessions", "revoke", "--", "--json"], ["sessions", "revoke", "--", "--json"]),
        (["sessions", "list", "--active", "--json"], ["--json", "sessions", "list", "--active"]),
        (["agents", "list", "--url"], ["--url", "agents", "list"]),
    ],
)
def test_hoist_moves_only_the_global_options(given: list[str], hoisted: list[str]) -> None:
    assert hoist(COMMAND, given) == hoisted


def test_global_options_after_the_command_work(run: Run, db_url: str) -> None:
    created = run("agents", "create", "--name", "late", "--database-url", db_url, "--json")
    agent = created.json()
    before = run("--database-url", db_url, "--json", "agents", "list")
    after = run("agents", "list", "--json", "--database-url", db_url)
    between = run("agents", "--database-url", db_url, "list", "--json")
    assert before.json() == after.json() == between.json()
    assert [a["id"] for a in after.json()["agents"]] == [agent["id"]]
    table = run("agents", "list", "--table", "--database-url", db_url)
    assert table.out.splitlines()[0].split() == [
        "ID",
        "NAME",
        "STATUS",
        "BALANCE",
        "OWNER",
        "SUSPENSION",
        "CREATED",
    ]
    assert agent["id"] in table.out.splitlines()[1]


def test_url_and_database_url_exclude_each_other(run: Run, db_url: str) -> None:
    result = run("agents", "list", "--url", "http://127.0.0.1:1", "--database-url", db_url)
    assert result.code == ExitCode.USAGE
    assert result.err.count("\n") == 1 and "exclude each other" in result.err


def test_database_url_on_the_command_line_beats_racefree_url_in_the_environment(
    run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:1")  # nothing listens there
    assert run("agents", "list", "--database-url", db_url).json()["agents"] == []


def test_a_local_only_command_refuses_url_and_ignores_racefree_url(
    run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = run("sessions", "cleanup", "--url", "http://127.0.0.1:1")
    assert refused.code == ExitCode.USAGE
    assert "no remote mode" in refused.err and refused.err.count("\n") == 1
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:1")
    done = run("sessions", "cleanup", "--database-url", db_url)
    assert (done.code, done.out) == (0, "deleted 0 expired sessions\n")
    assert run("sessions", "cleanup", "--database-url", db_url, "--json").json() == {"deleted": 0}
