"""A lean HTTP/1.1 keep-alive client on a raw socket, for benchmarks.

httpx costs about half a millisecond of CPU per request on this machine, more
than the server work it is meant to measure. This client sends pre-encoded
requests and parses only the status line, ``Content-Length`` (or chunks) and the
body: a few tens of microseconds per request.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

IDLE_RECONNECT_S = 3.0


class HttpError(RuntimeError):
    pass


class Connection:
    """One keep-alive connection; not thread-safe (one per client thread)."""

    def __init__(self, host: str, port: int, *, timeout: float = 60) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        self._used = time.monotonic()

    @classmethod
    def to(cls, base_url: str) -> Connection:
        host, _, port = base_url.removeprefix("http://").partition(":")
        return cls(host, int(port))

    def close(self) -> None:
        self.sock.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, bytes]:
        if time.monotonic() - self._used > IDLE_RECONNECT_S:
            self.close()  # the server closes idle keep-alive connections (uvicorn: 5 s)
            self._connect()
        self.sock.sendall(encode(method, path, self.host, headers, body))
        response = self.read_response()
        self._used = time.monotonic()
        return response

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self) -> tuple[int, bytes]:
        head = self._read_until(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = None
        chunked = False
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            return status, self._read_chunked()
        return status, self._read_exactly(length or 0)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise HttpError("connection closed by the server")
        self._buf += data

    def _read_until(self, marker: bytes) -> bytes:
        while (end := self._buf.find(marker)) < 0:
            self._fill()
        out, self._buf = self._buf[:end], self._buf[end + len(marker) :]
        return out

    def _read_exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._read_until(b"\r\n")
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._read_exactly(2)


def encode(
    method: str,
    path: str,
    host: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
