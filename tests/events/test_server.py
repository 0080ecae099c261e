"""Events out of a real ``racefree serve``: webhooks, restarts, two processes, the SSE stream."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook as Verifier

from racefree.client import Client
from racefree.testing import Server, start_server
from tests.events.receiver import Received, Receiver, sequence
from tests.events.support import eventually

pytestmark = pytest.mark.server

ENV = {
    "RACEFREE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "RACEFREE_EVENTS_POLL_INTERVAL_S": "0.05",
    "RACEFREE_EVENTS_HEARTBEAT_S": "0.3",
    "RACEFREE_WEBHOOK_BACKOFF_BASE_S": "0.05",
    "RACEFREE_WEBHOOK_BACKOFF_MAX_S": "1",
    "RACEFREE_WEBHOOK_LEASE_TTL_S": "3",
    "RACEFREE_WEBHOOK_TIMEOUT_S": "1.5",
    "RACEFREE_WEBHOOK_SECRET_KEY": "q7nX9qk5cV2m0yqz1Cw3hH3b9y8w4s4m1h1x6K0b2QE=",
}


def _add_webhook(server: Server, url: str, types: list[str]) -> dict[str, str]:
    with server.client() as c:
        created = c.post(
            "/v1/webhooks",
            json={"url": url, "event_types": types},
            headers=server.operator_headers(),
        )
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


def _activate(server: Server) -> str:
    with server.client() as c:
        done = c.post(
            "/v1/kill-switch/activate", json={"reason": "drill"}, headers=server.operator_headers()
        )
    assert done.status_code == 200, done.text
    activation: str = done.json()["activation_id"]
    return activation


def _activations(receiver: Receiver) -> list[Received]:
    return [r for r in receiver.succeeded() if r.payload["type"] == "KILL_SWITCH_ACTIVATED"]


def test_an_activation_is_delivered_once_per_webhook_and_a_flaky_receiver_gets_it_third(
    db_url: str, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path, env=ENV)
    try:
        with Receiver() as one, Receiver() as two, Receiver(sequence(500, 500)) as flaky:
            secrets = {
                r.url: _add_webhook(server, r.url, types)["secret"]
                for r, types in (
                    (one, ["KILL_SWITCH_ACTIVATED"]),
                    (two, ["*"]),
                    (flaky, ["KILL_SWITCH_ACTIVATED"]),
                )
            }
            activation_id = _activate(server)
            for receiver in (one, two, flaky):
                receiver.wait_for(lambda r: len(_activations(r)) == 1)
            time.sleep(1.0)  # time for any duplicate to show up
            for receiver in (one, two, flaky):
                got = _activations(receiver)
                assert len(got) == 1
                payload = Verifier(secrets[receiver.url]).verify(got[0].body, got[0].headers)
                assert payload["data"]["details"]["activation_id"] == activation_id
            flaky_tries = [r for r in flaky.requests if r.event_id == got[0].event_id]
            assert [r.status for r in flaky_tries] == [500, 500, 200]
    finally:
        server.stop()


def test_a_server_killed_right_after_the_commit_delivers_after_restart(
    db_url: str, tmp_path: Path
) -> None:
    # the first request is answered only after the server is dead: not acknowledged to it
    slow_first = lambda n, _b: (200, {}, 3.0 if n == 0 else 0.0)  # noqa: E731
    server = start_server(db_url, tmp_path, env=ENV)
    with Receiver(slow_first) as receiver:
        try:
            _add_webhook(server, receiver.url, ["KILL_SWITCH_ACTIVATED"])
            token = server.operator_token
            _activate(server)
            server.process.kill()  # SIGKILL, right after the 200
            server.process.wait(10)
        finally:
            server.stop()
        killed_at = time.monotonic()
        restarted = start_server(db_url, tmp_path, env=ENV)
        try:
            receiver.wait_for(
                lambda r: any(x.started > killed_at for x in _activations(r)), timeout=60
            )
            with Client(restarted.base_url, token) as ops:
                (hook,) = ops.webhooks.list().webhooks
                # the receiver records a request before it answers; the deliverer records
                # the success after the answer: wait for that
                deliveries = eventually(
                    lambda: ops.webhooks.deliveries(hook.id).deliveries,
                    lambda found: any(d.outcome == "SUCCEEDED" for d in found),
                    timeout=30,
                )
            # whether the dead server's request got out or not, one success is recorded,
            # by the restarted server (a first request answered too late counts as FAILED)
            assert [d.outcome for d in deliveries].count("SUCCEEDED") == 1
            assert deliveries[0].outcome == "SUCCEEDED"
        finally:
            restarted.stop()


def test_two_servers_never_deliver_one_webhook_concurrently(
    engine: str, db_url: str, tmp_path: Path
) -> None:
    if engine == "sqlite":
        pytest.skip("one serving process per SQLite file; several need PostgreSQL")
    slow = lambda _n, _b: (200, {}, 0.02)  # noqa: E731
    first = start_server(db_url, tmp_path, env=ENV)
    second = start_server(db_url, tmp_path, env=ENV)
    try:
        with Receiver(slow) as a, Receiver(slow) as b:
            for receiver in (a, b):
                _add_webhook(first, receiver.url, ["AGENT_CREATED"])
            # in bursts, each drained before the next: a holder releases a webhook's lease
            # when nothing is left, so each burst is a new race between the two processes'
            # pollers for each lease (one process winning all 20 takes is 2 x 2^-20)
            for burst in range(10):
                for i, server in zip(
                    range(3 * burst, 3 * burst + 3), itertools.cycle((first, second)), strict=False
                ):
                    with server.client() as c:
                        made = c.post(
                            "/v1/agents", json={"name": f"a{i}"}, headers=first.operator_headers()
                        )
                        assert made.status_code == 201, made.text
                for receiver in (a, b):
                    receiver.wait_for(
                        lambda r, n=3 * burst + 3: len({x.event_id for x in r.succeeded()}) >= n
                    )
            for receiver in (a, b):
                receiver.wait_for(lambda r: len({x.event_id for x in r.succeeded()}) == 30)
                ids = [x.event_id for x in receiver.succeeded()]
                assert ids == sorted(ids)
                spans = sorted((x.started, x.ended) for x in receiver.requests)
                assert all(q[0] >= p[1] for p, q in itertools.pairwise(spans))
                assert len(receiver.succeeded()) == 30  # and none twice
            # both processes took part: the exclusion above was under contention
            with first.api() as ops:
                hooks = ops.webhooks.list().webhooks
                recorded = eventually(  # the deliverers record a success after its answer
                    lambda: [ops.webhooks.deliveries(h.id).deliveries for h in hooks],
                    lambda found: all(
                        [d.outcome for d in page].count("SUCCEEDED") == 30 for page in found
                    ),
                    timeout=30,
                )
            holders = {d.holder for page in recorded for d in page}
            assert len(holders) == 2, holders
    finally:
        first.stop()
        second.stop()


def _frames(lines: list[str]) -> list[dict[str, str]]:
    frames, current = [], {}
    for line in lines:
        if not line:
            if current:
                frames.append(current)
            current = {}
        elif line.startswith(":"):
            current.setdefault("comment", line)
        else:
            name, _, value = line.partition(": ")
            current[name] = value
    return frames


def _data(frames: list[dict[str, str]]) -> list[dict[str, str]]:
    return [f for f in frames if "data" in f]


def _read_stream(
    server: Server,
    done: Callable[[list[dict[str, str]]], bool],
    headers: dict[str, str] | None = None,
    query: str = "",
) -> list[dict[str, str]]:
    """Frames of the stream until ``done(frames)``."""
    lines: list[str] = []
    with (
        httpx.Client(base_url=server.base_url, timeout=30) as c,
        c.stream(
            "GET",
            f"/v1/events/stream{query}",
            headers={**server.operator_headers(), **(headers or {})},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            lines.append(line)
            if line == "" and done(_frames(lines)):
                break
    return _frames(lines)


def _types(frames: list[dict[str, str]]) -> list[str]:
    return [json.loads(f["data"])["type"] for f in _data(frames)]


def test_the_stream_sends_events_as_they_commit_and_resumes(db_url: str, tmp_path: Path) -> None:
    server = start_server(db_url, tmp_path, env=ENV)
    try:
        with server.client() as c:
            for i in range(3):
                c.post("/v1/agents", json={"name": f"s{i}"}, headers=server.operator_headers())
        everything = _data(
            _read_stream(
                server, lambda f: _types(f).count("AGENT_CREATED") == 3, query="?after_id=0"
            )
        )
        events = [json.loads(f["data"]) for f in everything]
        assert [str(e["id"]) for e in events] == [f["id"] for f in everything]
        assert [e["id"] for e in events] == sorted(e["id"] for e in events)
        with server.client() as c:
            assert c.get("/v1/events/stream").status_code == 401
        # resume after the first event: the rest, in order, and nothing before it
        resumed = _read_stream(
            server,
            lambda f: len(_data(f)) == len(everything) - 1,
            headers={"Last-Event-ID": everything[0]["id"]},
        )
        assert [f["id"] for f in _data(resumed)] == [f["id"] for f in everything[1:]]
        # the tail: from before the last two events; a reconnect's Last-Event-ID wins over it
        tail = _read_stream(server, lambda f: len(_data(f)) == 2, query="?last=2")
        assert [f["id"] for f in _data(tail)] == [f["id"] for f in everything[-2:]]
        reconnected = _read_stream(
            server,
            lambda f: len(_data(f)) == 1,
            headers={"Last-Event-ID": everything[-2]["id"]},
            query="?last=2",
        )
        assert [f["id"] for f in _data(reconnected)] == [everything[-1]["id"]]

        # live, filtered, with heartbeats while idle
        def activate_later() -> None:
            time.sleep(1.0)
            _activate(server)

        threading.Thread(target=activate_later, daemon=True).start()
        live = _read_stream(
            server, lambda f: len(_data(f)) == 1, query="?types=KILL_SWITCH_ACTIVATED"
        )
        assert _types(live) == ["KILL_SWITCH_ACTIVATED"]
        assert any(f.get("comment") == ": heartbeat" for f in live)
        with server.client() as c:
            for query in ("after_id=999999", "after_id=0&last=2", "last=1001", "last=-1"):
                bad = c.get(f"/v1/events/stream?{query}", headers=server.operator_headers())
                assert bad.status_code == 400, query
                assert bad.json()["code"] == "VALIDATION_ERROR"
    finally:
        server.stop()


def test_sigterm_ends_open_streams(db_url: str, tmp_path: Path) -> None:
    server = start_server(db_url, tmp_path, env=ENV)
    opened = threading.Event()

    def listen() -> None:
        try:
            with (
                httpx.Client(base_url=server.base_url, timeout=60) as c,
                c.stream("GET", "/v1/events/stream", headers=server.operator_headers()) as r,
            ):
                for _ in r.iter_lines():
                    opened.set()
        except httpx.HTTPError:
            pass  # the server went away: what this test wants

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(30)
    started = time.monotonic()
    server.process.terminate()
    server.process.wait(30)
    assert time.monotonic() - started < 12  # not held open by the stream
    server.stop()


def test_last_counts_every_type_and_bad_starts_are_catalog_400s(
    db_url: str, tmp_path: Path
) -> None:
    """``?last=N&types=`` starts before the last N events of every type (docs/events.md):
    it sends the matching ones among them, not the last N matching ones."""
    server = start_server(db_url, tmp_path, env=ENV)
    try:
        with server.api() as api:
            for name in ("t1", "t2"):
                api.agents.suspend(api.agents.create(name).id)  # CREATED, SUSPENDED twice
        # the last three events: SUSPENDED(t1), CREATED(t2), SUSPENDED(t2)
        only = "?last=3&types=AGENT_CREATED"
        tail = _read_stream(server, lambda f: len(_data(f)) == 1, query=only)
        assert [json.loads(f["data"])["data"]["details"] for f in _data(tail)] == [{"name": "t2"}]
        with server.client() as c:
            everything = _data(_read_stream(server, lambda f: len(_data(f)) >= 1, query="?last=1"))
            last_id = int(everything[0]["id"])
            for query, headers, loc in (
                ("last=2", {"Last-Event-ID": str(last_id + 10**6)}, ["header", "Last-Event-ID"]),
                (f"after_id={last_id + 10**6}", {}, ["query", "after_id"]),
                ("last=x", {}, ["query", "last"]),
                ("last=", {}, ["query", "last"]),
                ("after_id=1&last=0", {}, ["query", "last"]),
                ("last=2", {"Last-Event-ID": "1a"}, ["header", "Last-Event-ID"]),
            ):
                bad = c.get(
                    f"/v1/events/stream?{query}", headers={**server.operator_headers(), **headers}
                )
                assert bad.status_code == 400, (query, bad.text)
                assert bad.headers["content-type"].startswith("application/problem+json")
                assert bad.json()["code"] == "VALIDATION_ERROR"
                assert [i["loc"] for i in bad.json()["details"]["issues"]] == [loc], query
    finally:
        server.stop()


def test_six_streams_opened_at_once_past_a_limit_of_two_make_two_and_four_hear_429(
    db_url: str, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path, env={**ENV, "RACEFREE_EVENTS_MAX_STREAMS": "2"})
    barrier = threading.Barrier(6)
    release = threading.Event()
    answers: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()

    def open_stream() -> None:
        with (
            httpx.Client(base_url=server.base_url, timeout=60) as c,
            c.stream("GET", "/v1/events/stream", headers=server.operator_headers()) as r,
        ):
            body = b"" if r.status_code == 200 else r.read()
            with lock:
                answers.append((r.status_code, dict(r.headers), body))
            if r.status_code == 200:
                release.wait(60)  # held open, counted against the limit

    def at_once() -> None:
        barrier.wait(30)
        open_stream()

    try:
        threads = [threading.Thread(target=at_once, daemon=True) for _ in range(6)]
        for t in threads:
            t.start()
        assert eventually(lambda: len(answers), lambda n: n == 6, timeout=30) == 6
        assert sorted(status for status, _, _ in answers) == [200, 200, 429, 429, 429, 429]
        for status, headers, body in answers:
            if status == 429:
                assert headers["content-type"].startswith("application/problem+json")
                assert headers["retry-after"] == "5"
                problem = json.loads(body)
                assert (problem["code"], problem["details"]) == ("RATE_LIMITED", {"max_streams": 2})
        release.set()  # the two end; then one more may open
        for t in threads:
            t.join(30)

        def one_opens() -> bool:
            with (
                httpx.Client(base_url=server.base_url, timeout=10) as c,
                c.stream("GET", "/v1/events/stream", headers=server.operator_headers()) as r,
            ):
                return r.status_code == 200

        assert eventually(one_opens, bool, timeout=30)
    finally:
        release.set()
        server.stop()
