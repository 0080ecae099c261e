"""``racefree serve --workers N``: several processes on PostgreSQL, refused on SQLite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from racefree.testing import Server, free_port, start_server


@pytest.mark.parametrize("engine", ["sqlite"])
def test_several_workers_on_sqlite_are_refused_pointing_to_postgresql(
    db_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEFREE_")}
    done = subprocess.run(
        [sys.executable, "-m", "racefree", "serve", "--workers", "2", "--port", str(free_port())],
        env={**env, "RACEFREE_DATABASE_URL": db_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "--workers 2 needs PostgreSQL" in line and "postgresql://" in line


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _serving_process(conn: socket.socket, server_port: int, workers: list[int]) -> int:
    """Which worker process holds the server side of ``conn`` (from /proc/net/tcp)."""
    client_port = conn.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and (
            int(remote.split(":")[1], 16) == client_port
        ):
            for pid in workers:
                if inode in _socket_inodes(pid):
                    return pid
    raise AssertionError("no worker holds this connection")


def _request(conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> int:
    body = b'{"reason": "test"}' if method == "POST" else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head_text, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head_text.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += conn.recv(65536)
    return int(head_text.split(b" ")[1])


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgresql"])
def test_two_workers_share_the_kill_switch(db_url: str, tmp_path: Path) -> None:
    server: Server = start_server(db_url, tmp_path, args=["--workers", "2"])
    try:
        assert server.operator_token  # first-start credentials, printed once by the parent
        assert sum("operator token:" in line for line in server.output) == 1
        port = int(server.base_url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while len(workers := _children(server.process.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        by_worker: dict[int, socket.socket] = {}
        opened = []
        while len(by_worker) < 2:  # connections until each worker holds one
            assert len(opened) < 200, "connections never reached both workers"
            conn = socket.create_connection(("127.0.0.1", port))
            opened.append(conn)
            assert _request(conn, "GET", "/health", {}) == 200
            by_worker.setdefault(_serving_process(conn, port, workers), conn)
        first, second = by_worker.values()
        operator = {"Authorization": f"Bearer {server.operator_token}"}
        assert _request(second, "GET", "/v1/agents", operator) == 200
        assert _request(first, "POST", "/v1/kill-switch/activate", operator) == 200
        # the other process reads the state from the database at its next request
        assert _request(second, "POST", "/v1/agents", operator) == 503
        assert _request(second, "GET", "/health", {}) == 200
        for conn in opened:
            conn.close()
    finally:
        server.stop()
    assert server.process.returncode is not None


@pytest.mark.parametrize("engine", ["postgresql"])
def test_serve_starts_while_the_database_drops_its_connections(db_url: str, tmp_path: Path) -> None:
    """An administrator terminating backends (or a failover) while a server prepares the
    database: it tries again and serves, instead of exiting on the first lost connection."""
    import threading

    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    admin = admin.replace("postgresql+psycopg://", "postgresql://")
    stop = threading.Event()
    killed: list[int] = []

    def terminate() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            while not stop.is_set() and len(killed) < 3:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (url.database,),
                ).fetchall()
                killed.extend(1 for (done,) in rows if done)
                time.sleep(0.01)

    killer = threading.Thread(target=terminate, daemon=True)
    killer.start()
    try:
        server = start_server(db_url, tmp_path)
    finally:
        stop.set()
        killer.join(10)
    try:
        assert killed, "no backend of the starting server was terminated"
        health = server.client().get("/health")
        assert health.json()["status"] == "ok"
    finally:
        server.stop()
