"""``racefree webhooks list|add|remove`` and ``racefree events tail [--follow]``."""

from __future__ import annotations

import json
import threading

import pytest

from racefree.cli import main
from racefree.cli.exits import ExitCode
from racefree.core.db import Database
from tests.events.support import record, wait_until_final


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, db_url: str, db: Database) -> str:
    monkeypatch.setenv("RACEFREE_DATABASE_URL", db_url)
    monkeypatch.setenv("RACEFREE_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    return db_url


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _one(out: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(out)
    return found


def test_webhooks_add_list_remove(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    # the target is an argument: --url is the global option of remote mode
    assert main(["webhooks", "add", "http://127.0.0.1:9/x", "--types", "A_B,C"]) == 0
    added = _one(capsys.readouterr().out)
    assert str(added["secret"]).startswith("whsec_")
    assert added["event_types"] == ["A_B", "C"]
    assert main(["webhooks", "list"]) == 0
    listed = _one(capsys.readouterr().out)["webhooks"]
    assert isinstance(listed, list)
    assert [h["id"] for h in listed] == [added["id"]]
    assert "secret" not in listed[0]
    assert main(["webhooks", "remove", str(added["id"])]) == 0
    assert _one(capsys.readouterr().out) == {"id": added["id"], "deleted": True}
    assert main(["webhooks", "remove", str(added["id"])]) == ExitCode.NOT_FOUND
    assert "no webhook" in capsys.readouterr().err
    assert main(["webhooks", "add", "http://10.1.2.3/x"]) == 1
    assert "RACEFREE_WEBHOOK_ALLOWED_HOSTS" in capsys.readouterr().err


def test_events_tail_and_follow(
    cli_env: str, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("T1", "T2", "T3"):
        record(db, name)
    wait_until_final(db)
    assert main(["events", "tail", "--limit", "2"]) == 0
    assert [e["type"] for e in _lines(capsys.readouterr().out)] == ["T2", "T3"]
    assert main(["events", "tail", "--after-id", "0", "--types", "T1,T3"]) == 0
    assert [e["type"] for e in _lines(capsys.readouterr().out)] == ["T1", "T3"]
    later = threading.Timer(0.3, lambda: [record(db, "LIVE") for _ in range(2)])
    later.start()
    assert (
        main(["events", "tail", "--follow", "--limit", "0", "--types", "LIVE", "--count", "2"]) == 0
    )
    later.join()
    assert [e["type"] for e in _lines(capsys.readouterr().out)] == ["LIVE", "LIVE"]
    assert main(["events", "tail", "--after-id", "999999"]) == 1
    assert "no event with id" in capsys.readouterr().err
