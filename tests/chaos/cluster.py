"""The system under test: ``racefree serve`` replicas on one database, and that database.

PostgreSQL runs several replicas on one fresh database; SQLite runs one
server on one file (a SQLite file serves one process, DESIGN 2.4). Every
replica keeps its port across restarts, so clients can keep their addresses.
The settings shorten every wait the faults must outlast: tier timeouts of two
seconds, a one-second DELAY tier, a one-second recovery wait.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from racefree.core.db import Database
from racefree.testing import Server, free_port, start_server

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MASTER_PASSWORD = "chaos master password"
#: every connection the harness itself opens carries this name (fault injection spares it)
HARNESS_APP = "racefree-chaos"

#: the tier timeout every fault is held past
TIER_TIMEOUT_S = 2
SERVER_ENV = {
    "RACEFREE_TIER_INSTANT_TIMEOUT_S": str(TIER_TIMEOUT_S),
    "RACEFREE_TIER_NOTIFY_TIMEOUT_S": str(TIER_TIMEOUT_S),
    "RACEFREE_TIER_DELAY_TIMEOUT_S": str(TIER_TIMEOUT_S),
    "RACEFREE_TIER_APPROVAL_TIMEOUT_S": str(TIER_TIMEOUT_S),
    "RACEFREE_TIER_DELAY_S": "1",
    "RACEFREE_TIER_APPROVAL_TTL_S": "4",
    "RACEFREE_WORKER_INTERVAL_S": "0.25",
    "RACEFREE_WORKER_LEASE_TTL_S": "2",
    "RACEFREE_RECOVERY_WAIT_S": "1",
    "RACEFREE_RECOVERY_WAIT_OWNER_S": "1",
    "RACEFREE_SESSION_RENEWAL_MIN_ELAPSED": "0",
    "RACEFREE_PLAN_GENERATION_DELAY_MS": "150",
    "RACEFREE_LOCK_TTL_S": "3",
    "RACEFREE_DB_POOL_SIZE": "8",
    "RACEFREE_SQLITE_BUSY_TIMEOUT_MS": "15000",
    "RACEFREE_EXECUTOR_RETRY_BASE_S": "0.05",
}


@dataclass
class Replica:
    """One serving process; ``server`` is None while it is down (killed, not yet restarted)."""

    name: str
    port: int
    server: Server | None = None
    paused: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        server = self.server
        return None if server is None else server.process.pid


@dataclass
class Cluster:
    engine: str
    database_url: str
    workdir: Path
    replicas: list[Replica]
    operator_token: str = ""
    #: PostgreSQL: the database's name (kept after a failing run, dropped otherwise)
    pg_database: str | None = None

    # -- lifecycle -------------------------------------------------------------

    @classmethod
    @contextmanager
    def up(cls, engine: str, workdir: Path, replicas: int) -> Iterator[Cluster]:
        url, pg_name = _fresh_database(engine, workdir)
        count = replicas if engine == "postgresql" else 1
        cluster = cls(
            engine,
            url,
            workdir,
            [Replica(f"r{i}", free_port()) for i in range(count)],
            pg_database=pg_name,
        )
        try:
            for replica in cluster.replicas:
                cluster.start(replica)
            yield cluster
        finally:
            cluster.stop_all()

    def start(self, replica: Replica) -> None:
        server = start_server(
            self.database_url,
            self.workdir,
            env=SERVER_ENV,
            master_password=MASTER_PASSWORD,
            port=replica.port,
        )
        if server.operator_token:  # printed once, by the first start on this database
            self.operator_token = server.operator_token
        replica.server, replica.paused = server, False

    def kill(self, replica: Replica) -> None:
        """SIGKILL: no shutdown, no rollback but the database's own."""
        server, replica.server = replica.server, None
        if server is not None:
            if replica.paused:
                os.kill(server.process.pid, signal.SIGCONT)
            server.process.kill()
            server.process.wait()
        replica.paused = False

    def pause(self, replica: Replica) -> bool:
        if replica.server is None or replica.paused:
            return False
        os.kill(replica.server.process.pid, signal.SIGSTOP)
        replica.paused = True
        return True

    def resume(self, replica: Replica) -> None:
        if replica.server is not None and replica.paused:
            os.kill(replica.server.process.pid, signal.SIGCONT)
        replica.paused = False

    def heal(self) -> None:
        """Every replica running and resumed."""
        for replica in self.replicas:
            with replica.lock:
                self.resume(replica)
                if replica.server is None or replica.server.process.poll() is not None:
                    replica.server = None
                    self.start(replica)

    def stop_all(self) -> None:
        for replica in self.replicas:
            self.resume(replica)
            if replica.server is not None:
                replica.server.stop()
                replica.server = None

    # -- access ----------------------------------------------------------------

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.server is not None]

    def operator_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator_token}"}

    def database(self) -> Database:
        """A harness connection to the database (for the checker and the faults)."""
        if self.engine == "sqlite":
            return Database.from_url(self.database_url)
        url = make_url(self.database_url).update_query_dict({"application_name": HARNESS_APP})
        return Database.from_url(url.render_as_string(hide_password=False))

    @property
    def sqlite_path(self) -> str:
        path = make_url(self.database_url).database
        assert self.engine == "sqlite" and path
        return path

    def pg_connect(self) -> psycopg.Connection[Any]:
        assert self.engine == "postgresql"
        return psycopg.connect(self.database_url, autocommit=True, application_name=HARNESS_APP)

    def request(self, replica: Replica, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=replica.base_url, timeout=20) as client:
            return client.request(method, path, **kwargs)

    def drop_database(self) -> None:
        if self.pg_database is not None:
            with psycopg.connect(_admin_url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')


def _admin_url() -> str:
    return os.environ.get("RACEFREE_TEST_POSTGRES_URL", DEFAULT_PG)


def _fresh_database(engine: str, workdir: Path) -> tuple[str, str | None]:
    if engine == "sqlite":
        return f"sqlite:///{workdir / 'racefree.db'}", None
    name = f"racefree_chaos_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)
    return url, name
