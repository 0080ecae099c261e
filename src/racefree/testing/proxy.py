"""A TCP proxy that holds back answers: a slow network, made on purpose.

Put it between a client and a real server to lose answers *after* the server
did the work -- the case that retries with an ``Idempotency-Key`` exist for::

    with DelayProxy(server.base_url, delay=3.0, times=1, match=b"POST /v1/transactions") as p:
        client = SessionClient(p.base_url, token, retry=RetryPolicy(attempt_timeout=1))
        client.transactions.submit(100, "shop")  # 1st answer late -> retried -> replayed

The first ``times`` requests that start with ``match`` (request line first,
as a request on a connection begins) get their answer ``delay`` seconds late:
by then the client has usually given up and closed the connection. Everything
else is forwarded at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit

_CHUNK = 65536


class DelayProxy:
    """Forward ``127.0.0.1:<port>`` to ``target``; delay the first matching answers."""

    def __init__(self, target: str, *, delay: float, times: int = 1, match: bytes = b"") -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.delay = delay
        self.match = match
        self._left = times
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        #: how many answers were held back
        self.delayed = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        hold = threading.Event()  # the next answer on this connection is held back
        with client, socket.create_connection(self._target) as upstream:
            requests = threading.Thread(
                target=self._requests, args=(client, upstream, hold), daemon=True
            )
            requests.start()
            with contextlib.suppress(OSError):
                while chunk := upstream.recv(_CHUNK):
                    if hold.is_set():
                        hold.clear()
                        time.sleep(self.delay)
                    client.sendall(chunk)
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)
            requests.join(timeout=1)

    def _requests(
        self, client: socket.socket, upstream: socket.socket, hold: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := client.recv(_CHUNK):
                if self._take(chunk):
                    hold.set()
                upstream.sendall(chunk)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _take(self, first: bytes) -> bool:
        if not first.startswith(self.match):
            return False
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            self.delayed += 1
            return True

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
