"""The racefree command: scriptable output, one-line errors, the SQLite serving rule."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from racefree.cli.exits import ExitCode
from racefree.core import tokens
from racefree.operators import OPERATOR_PREFIX
from racefree.testing import Server, start_server


def racefree(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "racefree", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_create_token_prints_only_the_token(db_url: str) -> None:
    result = racefree("operator", "create-token", "--label", "ci", "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    assert tokens.well_formed(result.stdout.strip(), OPERATOR_PREFIX)
    assert result.stdout.count("\n") == 1


def test_db_upgrade_builds_a_fresh_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = racefree("db", "upgrade", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database at revision ")


def test_commands_refuse_an_unmigrated_database_in_one_line(tmp_path: Path) -> None:
    result = racefree(
        "operator", "create-token", "--database-url", f"sqlite:///{tmp_path / 'new.db'}"
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "racefree db upgrade" in result.stderr


def test_a_bad_database_url_is_one_clear_line() -> None:
    result = racefree("db", "upgrade", "--database-url", "mysql://x/y")
    assert result.returncode == ExitCode.UNAVAILABLE
    assert (
        result.stderr
        == "racefree: error: unsupported database URL 'mysql://x/y': use sqlite:///path or postgresql://...\n"
    )


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["db", "upgrade"], ["operator", "create-token"], ["audit", "tail"]]
)
def test_every_command_has_help(command: list[str]) -> None:
    result = racefree(*command, "--help")
    assert result.returncode == 0 and "Usage: racefree" in result.stdout


def test_serve_shows_first_start_secrets_once_and_serves_health(
    server: Server, tmp_path: Path
) -> None:
    assert tokens.well_formed(server.operator_token, OPERATOR_PREFIX)
    assert all(server.master_password not in line for line in server.output)  # came from the env
    assert httpx.get(server.base_url + "/health").json()["kill_switch"] == {"state": "NORMAL"}
    audit = httpx.get(server.base_url + "/v1/audit-log", headers=server.operator_headers())
    assert audit.status_code == 200
    log = server.log_path.read_text()
    assert server.operator_token not in log


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_second_server_on_one_sqlite_file_is_refused(
    server: Server, db_url: str, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="SQLite supports one serving process"):
        start_server(db_url, tmp_path)


@pytest.mark.parametrize("engine", ["postgresql"])
def test_two_servers_share_one_postgresql_database(
    server: Server, db_url: str, tmp_path: Path
) -> None:
    second = start_server(db_url, tmp_path)
    try:
        assert second.operator_token == ""  # first start happened once, in the first server
        response = httpx.get(second.base_url + "/v1/audit-log", headers=server.operator_headers())
        assert response.status_code == 200
    finally:
        second.stop()


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_terminated_server_closes_its_database_cleanly(server: Server, db_url: str) -> None:
    wal = Path(str(make_url(db_url).database) + "-wal")
    assert httpx.get(server.base_url + "/v1/nonce").status_code == 200  # a write
    assert wal.exists()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)
    # closing the last connection checkpoints the WAL into the database and removes it
    assert not wal.exists()
