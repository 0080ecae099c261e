"""Probes: /livez, /readyz, /health 503, and shutdown with the database gone."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from racefree import migrations
from racefree.core.db import Database
from racefree.testing import Server, start_server
from tests.proxy import TcpProxy


def test_livez_and_readyz_answer_200_when_the_database_is_at_head(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema_revision": migrations.head_revision()}


def test_readyz_is_503_when_the_schema_is_behind(client: TestClient, db: Database) -> None:
    with db.write() as tx:
        tx.execute("UPDATE alembic_version SET version_num = '0005'")
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["code"] == "NOT_READY"
    assert ready.headers["retry-after"] == "1"
    assert client.get("/health").status_code == 200  # the database answers: health is fine


def test_probes_are_served_while_the_kill_switch_is_engaged(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    activated = client.post(
        "/v1/kill-switch/activate", json={"reason": "probe test"}, headers=operator_headers
    )
    assert activated.status_code == 200
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    health = client.get("/health")
    assert (health.status_code, health.json()["kill_switch"]) == (200, {"state": "ACTIVATED"})


class Outage:
    """Makes the server's database unreachable and reachable again, per engine."""

    def __init__(self, cut: Callable[[], None], restore: Callable[[], None]) -> None:
        self.cut = cut
        self.restore = restore


@contextmanager
def _outage_server(engine: str, db_url: str, tmp_path: Path) -> Iterator[tuple[Server, Outage]]:
    env = {"RACEFREE_WORKER_INTERVAL_S": "0.2"}
    if engine == "sqlite":
        path = Path(make_url(db_url).database or "")
        moved = path.with_suffix(".moved")
        server = start_server(db_url, tmp_path, env=env)
        outage = Outage(lambda: path.rename(moved), lambda: moved.rename(path))
        try:
            yield server, outage
        finally:
            server.stop()
        return
    url = make_url(db_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = start_server(proxied, tmp_path, env=env)
    try:
        yield server, Outage(proxy.cut, proxy.restore)
    finally:
        server.stop()
        proxy.cut()


def _status_within(http: httpx.Client, path: str, status: int, seconds: float) -> float:
    """Seconds until ``path`` answered ``status`` (fails after ``seconds``)."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < seconds:
        last = http.get(path).status_code
        if last == status:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{path} still answered {last}, not {status}, after {seconds} s")


@pytest.mark.server
def test_readyz_and_health_follow_the_database_going_and_coming_back(
    engine: str, db_url: str, tmp_path: Path
) -> None:
    with _outage_server(engine, db_url, tmp_path) as (server, outage), server.client() as http:
        assert http.get("/readyz").status_code == 200
        outage.cut()
        _status_within(http, "/readyz", 503, 2.0)
        assert http.get("/readyz").json()["code"] == "NOT_READY"
        asked = time.monotonic()
        gone = http.get("/health")
        # not queued behind the pool's 30 s timeout: a known-dead server is answered at once
        assert time.monotonic() - asked < 5
        assert gone.status_code == 503
        assert gone.json()["status"] == "unavailable"
        assert set(gone.json()) == {"status", "version", "kill_switch"}  # same shape
        assert http.get("/livez").status_code == 200  # alive all along
        outage.restore()
        _status_within(http, "/readyz", 200, 10.0)
        assert http.get("/health").json()["status"] == "ok"


@pytest.mark.server
def test_sigterm_with_the_database_gone_exits_within_10_seconds(
    engine: str, db_url: str, tmp_path: Path
) -> None:
    with _outage_server(engine, db_url, tmp_path) as (server, outage):
        with server.client() as http:
            assert http.get("/readyz").status_code == 200
        outage.cut()
        time.sleep(1.0)  # the workers' next passes meet the gone database
        started = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=30)
        assert time.monotonic() - started < 10
