"""A real ``racefree serve`` process on a free port, for tests that need the whole server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from racefree.client import Client

DEFAULT_MASTER_PASSWORD = "correct horse battery staple"  # noqa: S105 - a test server's


def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server: its URL, first-start credentials and process."""

    base_url: str
    operator_token: str
    master_password: str
    process: subprocess.Popen[str]
    log_path: Path
    output: list[str] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        """A plain ``httpx.Client`` on the server (no credentials)."""
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)

    def api(self, **kwargs: Any) -> Client:
        """A :class:`racefree.client.Client` with the operator token."""
        from racefree.client import Client

        return Client(self.base_url, self.operator_token, **kwargs)

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

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    database_url: str,
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    master_password: str = DEFAULT_MASTER_PASSWORD,
    startup_timeout: float = 60,
    mint_operator_token: bool = False,
    args: Sequence[str] = (),
    port: int | None = None,
) -> Server:
    """Start ``racefree serve`` on ``database_url`` and wait until ``/health`` answers.

    The environment is this process's without any ``RACEFREE_`` variable, plus
    ``env`` (e.g. ``{"RACEFREE_SESSION_EXPIRES_IN": "4"}``). The operator token is
    the first-start one from the server's output; on a database that was started
    before there is none (``""``), unless ``mint_operator_token`` creates one (the
    master password is then the one the database was first started with). ``args``
    go to ``racefree serve`` (e.g. ``["--workers", "2"]``). Stop it with
    :meth:`Server.stop` (or use it as a context manager). ``port`` restarts a server
    on the port it had (a restart after a crash); by default a free one is taken.
    """
    port = port or free_port()
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
    log = log_path.open("a")  # a restart on the same port keeps what the crashed one said
    process = subprocess.Popen(  # noqa: S603 - our own interpreter, module and arguments
        [sys.executable, "-m", "racefree", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=full_env,
        cwd=workdir,
    )
    assert process.stdout is not None
    server = Server(f"http://127.0.0.1:{port}", "", master_password, process, log_path)
    _wait_healthy(server, startup_timeout)
    # Everything ``serve`` prints before it binds the port (the first-start credentials)
    # is in the pipe once /health answers: drain it now, without a race against a reader.
    server.output.extend(_drain(process))
    for line in server.output:
        if "operator token:" in line:
            server.operator_token = line.split("operator token:", 1)[1].strip()
    reader = threading.Thread(target=_collect, args=(process, server.output), daemon=True)
    reader.start()
    if mint_operator_token and not server.operator_token:  # not a first start
        server.operator_token = create_operator_token(database_url, full_env)
    return server


def create_operator_token(database_url: str, env: Mapping[str, str] | None = None) -> str:
    """A new operator token on ``database_url`` (``racefree operator create-token``)."""
    command = [sys.executable, "-m", "racefree", "operator", "create-token"]
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [*command, "--database-url", database_url, "--label", "racefree.testing"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(env) if env is not None else None,
        timeout=60,
    )
    return result.stdout.strip()


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log_path.read_text()}")
        try:
            if httpx.get(server.base_url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start: {server.log_path.read_text()}")


def _drain(process: subprocess.Popen[str]) -> list[str]:
    """The lines already written to ``process``'s stdout, read without blocking."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
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
