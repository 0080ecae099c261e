"""A real webhook receiver on 127.0.0.1 for the tests: records every request it gets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    status: int
    started: float
    ended: float

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result

    @property
    def event_id(self) -> int:
        return int(self.headers["webhook-id"])


#: decides the answer to the n-th request (0-based): (status, extra headers, delay seconds)
Script = Callable[[int, bytes], tuple[int, dict[str, str], float]]


def always(status: int = 200) -> Script:
    return lambda _n, _body: (status, {}, 0.0)


def sequence(*statuses: int, then: int = 200, headers: dict[str, str] | None = None) -> Script:
    def answer(n: int, _body: bytes) -> tuple[int, dict[str, str], float]:
        status = statuses[n] if n < len(statuses) else then
        return status, (headers or {}) if status >= 300 else {}, 0.0

    return answer


class Receiver:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or always(200)
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                started = time.monotonic()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    n = receiver._count
                    receiver._count += 1
                status, extra, delay = receiver.script(n, body)
                if delay:
                    time.sleep(delay)
                # taken, and the request recorded, before answering: the sender cannot move
                # on before this instant, so requests from one sender never overlap in
                # [started, ended] and are recorded in the order they were sent (recorded
                # after the answer, a thread descheduled there would fall behind the next)
                ended = time.monotonic()
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            body,
                            {k.lower(): v for k, v in self.headers.items()},
                            status,
                            started,
                            ended,
                        )
                    )
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def succeeded(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"receiver condition not met in {timeout}s; got {self.requests}")
