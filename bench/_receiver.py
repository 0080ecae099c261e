"""A webhook receiver in its own process, for the events benchmark.

The tests' receiver (``tests/events/receiver.py``) runs in the test's process.
In a benchmark that process also runs the load generator: the receiver's
threads would take the GIL from the submitting clients, and the "webhooks on"
round would measure the benchmark's own contention, not the server's. Here the
receiver is a process of its own, answers 200 with HTTP/1.1 keep-alive (as a
production receiver does), and reports, per ``TRANSACTION_CONFIRMED`` event,
the transaction id and the arrival time (``time.monotonic()``: one clock for
every process on the machine).
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

RECORDED_TYPE = "TRANSACTION_CONFIRMED"


def _serve(arrivals: Any, ready: Connection, record: bool) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection per sender

        def do_POST(self) -> None:
            started = time.monotonic()
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            if not record:
                return
            payload = json.loads(body)
            if payload["type"] == RECORDED_TYPE:
                arrivals.put((payload["data"]["transaction_id"], started))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.send(server.server_address[1])
    server.serve_forever()


class ProcessReceiver:
    """``with ProcessReceiver() as r``: ``r.url``; ``r.arrivals()`` -> {transaction id: time}.

    ``record=False``: only answer (a webhook whose arrivals are not measured).
    """

    def __init__(self, *, record: bool = True) -> None:
        context = multiprocessing.get_context("spawn")
        self._arrivals = context.Queue()
        self._ready, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(self._arrivals, child, record), daemon=True
        )
        self._seen: dict[str, float] = {}
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> ProcessReceiver:
        self._process.start()
        if not self._ready.poll(30):
            raise RuntimeError("the receiver process did not start")
        self.port = int(self._ready.recv())
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.join(10)

    def arrivals(self) -> dict[str, float]:
        """Every recorded event so far: transaction id -> first arrival."""
        while True:
            try:
                txn, at = self._arrivals.get_nowait()
            except queue.Empty:
                return self._seen
            self._seen.setdefault(txn, at)

    def wait_for(self, done: Callable[[dict[str, float]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.arrivals()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver's condition was not met in {timeout} s")
            time.sleep(0.02)
