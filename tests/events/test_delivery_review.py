"""Review findings in webhook delivery, each against the real database and a real receiver."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree.core.db import Database
from racefree.events import webhooks
from racefree.settings import Settings
from tests.events.hooks import deliverer, make_webhook, webhook
from tests.events.receiver import Receiver
from tests.events.support import record, wait_until_final

#: what a raw receiver does with an accepted connection once it has read the request
Behaviour = Callable[[socket.socket, threading.Event], None]


class RawReceiver:
    """A real TCP server on 127.0.0.1 answering with whatever bytes ``behaviour`` writes."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            with contextlib.suppress(OSError):  # the client hung up
                self.behaviour(conn, self.stop)

    def __enter__(self) -> RawReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def _drip_headers(conn: socket.socket, stop: threading.Event) -> None:
    """A status line, then a header byte every 0.2 s: each read well inside any timeout."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.wait(0.2):
        conn.sendall(b"x")
        if stop.wait(0.2):
            return
        conn.sendall(b"-a: b\r\n")


def _drip_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(0.2):
        conn.sendall(b"x")


def _huge_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000000000\r\n\r\n")
    chunk = b"x" * 65536
    deadline = time.monotonic() + 30
    while not stop.is_set() and time.monotonic() < deadline:
        conn.sendall(chunk)


def _deliver_within(d: Any, webhook_id: str, limit_s: float) -> float:
    """Run one delivery of ``webhook_id`` in a thread; how long it took (fails past the limit)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            d.deliver(webhook_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            done.set()

    started = time.monotonic()
    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(limit_s)
    took = time.monotonic() - started
    assert finished, f"the deliverer was still busy with one request after {limit_s}s"
    if errors:
        raise errors[0]
    return took


@pytest.fixture
def quick(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_timeout_s": 1.0})


@pytest.mark.parametrize("behaviour", [_drip_headers, _drip_body, _huge_body])
def test_a_slow_or_huge_answer_does_not_hold_the_deliverer_past_its_timeout(
    db: Database, quick: Settings, behaviour: Behaviour
) -> None:
    """The lease is renewed to outlive one timeout: a request must never run longer, or a
    second process takes the webhook while the first is still sending to it."""
    with RawReceiver(behaviour) as receiver:
        hook, _ = make_webhook(db, quick, receiver.url, ["SLOW"])
        record(db, "SLOW")
        wait_until_final(db)
        took = _deliver_within(deliverer(db, quick), hook.id, limit_s=6)
        assert receiver.connections == 1
    assert took < quick.webhook_timeout_s + 1.5
    with db.read() as tx:
        attempts = webhooks.deliveries(tx, hook.id)
    assert len(attempts) == 1  # recorded: a success (2xx headers) or one counted failure
    after = webhook(db, hook.id)
    if attempts[0].outcome == "FAILED":
        assert after.failures == 1
    else:
        assert attempts[0].status_code == 200 and after.failures == 0


def test_disabling_a_webhook_stops_its_deliveries_at_once(db: Database, settings: Settings) -> None:
    """An operator disables the webhook while the deliverer is in the middle of a page."""
    hook_id: list[str] = []

    def disable_on_first(n: int, _body: bytes) -> tuple[int, dict[str, str], float]:
        if n == 0:
            with db.write() as tx:
                webhooks.update(tx, hook_id[0], now=int(time.time()), actor="t", status="DISABLED")
        return 200, {}, 0.0

    with Receiver(disable_on_first) as receiver:
        hook, _ = make_webhook(db, settings, receiver.url, ["PAGED"])
        hook_id.append(hook.id)
        for _ in range(5):
            record(db, "PAGED")
        wait_until_final(db)
        deliverer(db, settings).deliver(hook.id)
        assert len(receiver.requests) == 1  # nothing after the disabling
    assert webhook(db, hook.id).status == "DISABLED"


BAD_URLS = [
    "http://127.0.0.1/hook\u0001",
    "http://127.0.0.1\t/hook",
    "http://127.0.0.1/ho\nok",
    "http://127.0.0.1/hook\u007f",
    "http://127.0.0.1/hook\ud800",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_url_the_http_client_cannot_send_to_is_a_400(
    client: TestClient, operator_headers: dict[str, str], url: str
) -> None:
    created = client.post(
        "/v1/webhooks",
        content=json.dumps({"url": url, "event_types": ["*"]}),
        headers={**operator_headers, "content-type": "application/json"},
    )
    assert created.status_code == 400, created.text
    assert created.json()["code"] == "VALIDATION_ERROR"
    ok = client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1/x", "event_types": ["*"]},
        headers=operator_headers,
    )
    assert ok.status_code == 201
    patched = client.patch(
        f"/v1/webhooks/{ok.json()['id']}",
        content=json.dumps({"url": url}),
        headers={**operator_headers, "content-type": "application/json"},
    )
    assert patched.status_code == 400, patched.text
    assert patched.json()["code"] == "VALIDATION_ERROR"


def test_an_unsendable_stored_url_counts_as_a_failure_and_other_webhooks_still_run(
    db: Database, settings: Settings
) -> None:
    """A target stored before validation was tightened: delivery must fail it, not crash."""
    with Receiver() as receiver:
        bad, _ = make_webhook(db, settings, "http://127.0.0.1/hook\u0001", ["MIXED"])
        good, _ = make_webhook(db, settings, receiver.url, ["MIXED"])
        record(db, "MIXED")
        wait_until_final(db)
        d = deliverer(db, settings)
        for _ in range(3):
            d.run_once()  # must not raise
            time.sleep(0.1)
        assert len(receiver.succeeded()) == 1
    after = webhook(db, bad.id)
    assert after.failures >= 1
    with db.read() as tx:
        assert webhooks.deliveries(tx, bad.id)[0].outcome == "FAILED"
    assert webhook(db, good.id).failures == 0
