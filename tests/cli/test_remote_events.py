"""``racefree rules|webhooks|events`` through a real server (both engines), printed as locally."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from racefree.cli.exits import ExitCode
from racefree.client import Client
from racefree.core.db import Database
from racefree.testing import Server, free_port, start_server
from tests.cli.conftest import SERVER_ENV, Result, Run, remote
from tests.events.support import held_open

ALLOWED = {"RACEFREE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}


@pytest.fixture
def served(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server that may send webhooks to 127.0.0.1; local mode is told the same."""
    server = start_server(db_url, tmp_path, env={**SERVER_ENV, **ALLOWED})
    monkeypatch.setenv("RACEFREE_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    yield server
    server.stop()


def _same(run: Run, served: Server, db_url: str, *command: str) -> Result:
    """``command`` run remotely and locally prints the same, in JSON and as a table."""
    for shape in ("--table", "--json"):
        there = run(*remote(served), shape, *command)
        here = run("--database-url", db_url, shape, *command)
        assert (here.code, here.out, here.err) == (there.code, there.out, there.err), command
    return there


def _fails_alike(run: Run, served: Server, db_url: str, code: ExitCode, *command: str) -> str:
    there = run(*remote(served), *command)
    here = run("--database-url", db_url, *command)
    assert there.code == here.code == code, (there.err, here.err)
    assert there.err == here.err and there.err.count("\n") == 1
    assert there.out == here.out == ""
    return there.err


def test_rules_through_a_server(run: Run, served: Server, db_url: str) -> None:
    url = remote(served)
    seeded = _same(run, served, db_url, "rules", "list").json()["rules"]
    assert sorted(r["type"] for r in seeded) == [
        "CONSECUTIVE_FAILURES",
        "DAILY_LIMIT",
        "HOURLY_RATE",
    ]
    with served.api() as api:
        agent = api.agents.create("bot")

    replaced = run(*url, "rules", "set", "CONSECUTIVE_FAILURES", "--param", "threshold=4").json()
    assert (replaced["scope"], replaced["params"], replaced["action"]) == (
        "global",
        {"threshold": 4},
        "SUSPEND_AGENT",
    )
    own = run(
        *url, "rules", "set", "HOURLY_RATE", "--agent-id", agent.id,
        "--params", '{"max_tx_per_hour": 3}', "--action", "WARN", "--disabled",
    ).json()  # fmt: skip
    assert (own["scope"], own["agent_id"], own["enabled"]) == ("agent", agent.id, False)
    assert (own["params"], own["action"]) == ({"max_tx_per_hour": 3}, "WARN")

    listed = _same(run, served, db_url, "rules", "list").json()["rules"]
    assert [r["scope"] for r in listed] == ["global"] * 3 + ["agent"]
    mine = _same(run, served, db_url, "rules", "list", "--agent-id", agent.id).json()["rules"]
    assert [r["id"] for r in mine] == [own["id"]]
    with served.api() as api:
        assert api.auto_stop.get(own["id"]).enabled is False

    assert run(*url, "rules", "delete", own["id"]).json() == {"id": own["id"], "deleted": True}
    gone = _fails_alike(run, served, db_url, ExitCode.NOT_FOUND, "rules", "delete", own["id"])
    assert gone.startswith("racefree: error: AUTO_STOP_RULE_NOT_FOUND: ")
    bad = ("rules", "set", "HOURLY_RATE", "--param", "max_tx_per_hour=0")
    assert "invalid parameters for HOURLY_RATE" in _fails_alike(
        run, served, db_url, ExitCode.FAILURE, *bad
    )
    usage = run(*url, "rules", "set", "NO_SUCH_TYPE")
    assert usage.code == ExitCode.USAGE and usage.err.count("\n") == 1


def test_webhooks_through_a_server(run: Run, served: Server, db_url: str) -> None:
    url = remote(served)
    added = run(*url, "webhooks", "add", "http://127.0.0.1:9/x", "--types", "C,A_B").json()
    assert str(added["secret"]).startswith("whsec_")
    assert (added["url"], added["event_types"], added["status"]) == (
        "http://127.0.0.1:9/x",
        ["A_B", "C"],
        "ACTIVE",
    )
    every = run("--database-url", db_url, "webhooks", "add", "http://127.0.0.1:9/all").json()
    assert every["event_types"] == ["*"] and str(every["secret"]).startswith("whsec_")
    # removed at once: the server's deliverer would keep failing to send it events
    run("--database-url", db_url, "webhooks", "remove", every["id"]).json()
    local = run(
        "--database-url", db_url, "webhooks", "add", "http://127.0.0.1:9/y", "--types", "NONE_YET"
    ).json()

    # the deliverer moves each webhook's cursor (last_event_id) past events it does not want
    listed = _eventually_same(run, served, db_url, "webhooks", "list").json()["webhooks"]
    assert {h["id"] for h in listed} == {added["id"], local["id"]}
    assert all("secret" not in h for h in listed)
    with served.api() as api:
        assert api.webhooks.get(local["id"]).url == "http://127.0.0.1:9/y"

    removed = run(*url, "webhooks", "remove", added["id"]).json()
    assert removed == {"id": added["id"], "deleted": True}
    gone = _fails_alike(run, served, db_url, ExitCode.NOT_FOUND, "webhooks", "remove", added["id"])
    assert gone.startswith("racefree: error: WEBHOOK_NOT_FOUND: ") and "no webhook" in gone
    refused = run(*url, "webhooks", "add", "http://10.1.2.3/x")
    assert refused.code == ExitCode.FAILURE
    assert "RACEFREE_WEBHOOK_ALLOWED_HOSTS" in refused.err and refused.err.count("\n") == 1
    bad_types = run(*url, "webhooks", "add", "http://127.0.0.1:9/z", "--types", "lower")
    assert bad_types.code == ExitCode.FAILURE and "VALIDATION_ERROR" in bad_types.err
    assert run("--database-url", db_url, "webhooks", "add", "http://127.0.0.1:9/z",
               "--types", "lower").code == ExitCode.FAILURE  # fmt: skip


def _events(result: Result) -> list[dict[str, object]]:
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def _eventually_same(run: Run, served: Server, db_url: str, *command: str) -> Result:
    """As :func:`_same`, once local mode's final events caught up (PostgreSQL: the head)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return _same(run, served, db_url, *command)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_events_tail_through_a_server(run: Run, served: Server, db_url: str) -> None:
    url = remote(served)
    with served.api() as api:
        for name in ("e1", "e2", "e3"):
            api.agents.suspend(api.agents.create(name).id)

    last = _events(_eventually_same(run, served, db_url, "events", "tail", "--limit", "2"))
    assert [e["type"] for e in last] == ["AGENT_CREATED", "AGENT_SUSPENDED"]
    assert last[1]["data"]["agent_id"] == last[0]["data"]["agent_id"]  # type: ignore[index]
    assert last[0]["data"]["details"] == {"name": "e3"}  # type: ignore[index]
    created = _events(
        _same(run, served, db_url, "events", "tail", "--after-id", "0", "--types", "AGENT_CREATED")
    )
    assert [e["data"]["details"]["name"] for e in created] == ["e1", "e2", "e3"]  # type: ignore[index]
    few = _same(run, served, db_url, "events", "tail", "-f", "--limit", "4", "--count", "2")
    assert [e["type"] for e in _events(few)] == ["AGENT_CREATED", "AGENT_SUSPENDED"]
    unknown = _fails_alike(
        run, served, db_url, ExitCode.FAILURE, "events", "tail", "--after-id", "999999"
    )
    assert "no event with id 999999" in unknown
    assert run(*url, "events", "tail", "--count", "1").code == ExitCode.USAGE

    # --follow: from after an event, then the new ones as they commit (the stream)
    after = created[0]["id"]
    argv = ["--after-id", str(after), "--types", "AGENT_CREATED", "--count", "3"]
    with _follower(served, *argv) as next_event:
        seen = [next_event() for _ in range(2)]  # e2, e3: there before it started
        with served.api() as api:
            api.agents.create("live")
        seen.append(next_event())
    assert [e["data"]["details"]["name"] for e in seen] == ["e2", "e3", "live"]  # type: ignore[index]


@pytest.mark.parametrize("engine", ["postgresql"])  # SQLite's one writer: no late commit
def test_events_tail_follow_prints_an_event_that_commits_late(
    run: Run, served: Server, db: Database
) -> None:
    """A takes its transaction id, B commits, the tail starts, A commits last.

    B is the newest event in the audit log when the tail starts, so a follower
    that printed it from there and resumed the stream after it would never get A,
    which the stream orders before B (a lower txid, ``racefree.events.outbox``).
    Following the stream's own tail (``?last=N``), it prints A, then B.
    """
    with contextlib.ExitStack() as holding:
        holding.enter_context(held_open(db, "LATE_A"))
        with served.api() as api:
            api.agents.create("b")  # AGENT_CREATED: committed, the audit log's newest
        with _follower(served, "--limit", "1", "--count", "3") as next_event:
            earlier = next_event()  # the last final event: the follower is reading the stream
            holding.close()  # A commits now, after B, with the lower txid
            late = [next_event(), next_event()]
    assert earlier["type"] not in ("LATE_A", "AGENT_CREATED")
    assert [e["type"] for e in late] == ["LATE_A", "AGENT_CREATED"]
    assert late[0]["id"] > late[1]["id"]  # A committed last: the higher id, first in the stream


def test_events_tail_follow_reconnects_after_a_server_restart(
    served: Server, db_url: str, tmp_path: Path
) -> None:
    """The server stops while the tail follows (its stream is cut) and comes back on its
    port: the tail reconnects after the last event it printed, prints the next, exits 0."""
    port = int(served.base_url.rsplit(":", 1)[1])
    token = served.operator_token
    with served.api() as api:
        api.agents.create("before")
    argv = ["--limit", "50", "--types", "AGENT_CREATED", "--count", "2"]
    with _follower(served, *argv) as next_event:
        first = next_event()
        served.stop()  # SIGTERM: the stream's connection is closed under the tail
        time.sleep(1.5)  # it tries to reconnect while nothing listens
        restarted = start_server(db_url, tmp_path, env={**SERVER_ENV, **ALLOWED}, port=port)
        try:
            with Client(restarted.base_url, token) as api:
                api.agents.create("after")
            second = next_event()
        finally:
            restarted.stop()
    assert first["data"]["details"] == {"name": "before"}  # type: ignore[index]
    assert second["data"]["details"] == {"name": "after"}  # type: ignore[index]


def test_events_tail_follow_fails_at_once_when_the_server_is_unreachable(run: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    down = run("--url", url, "--token", "rf_op_x", "--json", "events", "tail", "-f")
    assert time.monotonic() - started < 10
    assert down.code == ExitCode.UNAVAILABLE
    assert down.out == ""
    assert down.err.startswith("racefree: error: no answer from the server: ")
    assert down.err.count("\n") == 1


@contextlib.contextmanager
def _follower(served: Server, *options: str) -> Iterator[Callable[[], dict[str, object]]]:
    """``racefree events tail --follow`` as a process; each call returns its next event.

    It must exit by itself (with status 0) after its ``--count``; it is killed after 60 s.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "racefree", *remote(served), "events", "tail", "-f", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()

    def next_event() -> dict[str, object]:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the follower ended: {process.stderr.read() if process.stderr else ''}"
        found: dict[str, object] = json.loads(line)
        return found

    try:
        yield next_event
        assert process.wait(timeout=30) == 0
        assert process.stdout is not None and process.stdout.read() == ""
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
