"""Test helpers: barrier-started races and a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from racefree.core.db import Database
from racefree.core.errors import RacefreeError


@dataclass
class Outcome:
    """What one racer got: a value or an error."""

    value: Any = None
    error: BaseException | None = None

    @property
    def won(self) -> bool:
        return self.error is None

    @property
    def code(self) -> str | None:
        if isinstance(self.error, RacefreeError):
            return self.error.code.value
        return None if self.error is None else type(self.error).__name__


def race(n: int, attempt: Callable[[int], Any], *, timeout: float = 120) -> list[Outcome]:
    """Run ``attempt(i)`` in ``n`` threads released together by a barrier."""
    barrier = threading.Barrier(n, timeout=timeout)

    def run(i: int) -> Outcome:
        barrier.wait()
        try:
            return Outcome(value=attempt(i))
        except BaseException as exc:
            return Outcome(error=exc)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n), timeout=timeout))


def tally(outcomes: list[Outcome]) -> Counter[str]:
    """``{"won": k, "<CODE>": m, ...}`` for assertions on exact winner/loser counts."""
    return Counter("won" if o.won else str(o.code) for o in outcomes)


def http_race(
    n: int,
    base_url: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
    json: Any = None,
    timeout: float = 60,
) -> list[httpx.Response]:
    """``n`` requests released together; one connection per racer.

    ``headers`` may be a function of the racer's index, for races between
    different credentials (e.g. 19 wrong passwords and one right one).
    """
    clients = [httpx.Client(base_url=base_url, timeout=timeout) for _ in range(n)]
    try:
        for c in clients:  # open the connections before the barrier
            c.get("/health")
        outcomes = race(
            n,
            lambda i: clients[i].request(
                method, path, headers=headers(i) if callable(headers) else headers, json=json
            ),
            timeout=timeout,
        )
    finally:
        for c in clients:
            c.close()
    errors = [o.error for o in outcomes if o.error is not None]
    if errors:
        raise errors[0]
    return [o.value for o in outcomes]


def wait_until_blocked(db: Database, timeout: float = 30) -> None:
    """Return once some statement on ``db`` (PostgreSQL) waits on a lock; no sleeps to tune."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as tx:
            waiting = tx.scalar(
                "SELECT COUNT(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        if waiting:
            return
        time.sleep(0.005)
    raise AssertionError("no statement ever waited on a lock")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A real ``racefree serve`` process on a free port."""

    base_url: str
    operator_token: str
    master_password: str
    process: subprocess.Popen[str]
    log_path: Path
    output: list[str] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)

    def operator_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator_token}"}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    database_url: str,
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    master_password: str = "correct horse battery staple",
    startup_timeout: float = 60,
    args: Sequence[str] = (),
) -> Server:
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RACEFREE_")},
        "RACEFREE_DATABASE_URL": database_url,
        "RACEFREE_PORT": str(port),
        "RACEFREE_HOST": "127.0.0.1",
        "RACEFREE_MASTER_PASSWORD": master_password,
        "RACEFREE_LOG_LEVEL": "warning",
        **(env or {}),
    }
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "racefree", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=full_env,
        cwd=workdir,
    )
    assert process.stdout is not None
    server = Server(f"http://127.0.0.1:{port}", "", master_password, process, log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(server.base_url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        server.stop()
        raise RuntimeError(f"server did not start: {log_path.read_text()}")
    # Everything ``serve`` prints before it binds the port (the first-start credentials)
    # is in the pipe once /health answers: drain it now, without a race against a reader.
    server.output.extend(_drain(process))
    for line in server.output:
        if "operator token:" in line:
            server.operator_token = line.split("operator token:", 1)[1].strip()
    reader = threading.Thread(target=_collect, args=(process, server.output), daemon=True)
    reader.start()
    return server


def _drain(process: subprocess.Popen[str]) -> list[str]:
    """The lines already written to ``process``'s stdout, read without blocking."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    data = b""
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(fd, True)
    return data.decode().splitlines(keepends=True)


def _collect(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
