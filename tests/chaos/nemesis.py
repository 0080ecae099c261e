"""Faults, one at a time on a seeded schedule, each healed before the next.

* ``kill`` -- SIGKILL a replica, restart it on its port a moment later;
* ``pause`` -- SIGSTOP a replica past the tier timeout, then SIGCONT;
* ``row-lock`` -- hold an account row ``FOR UPDATE`` past the tier timeout
  (PostgreSQL), or the database's write lock (SQLite), from a harness connection;
* ``terminate-backends`` -- ``pg_terminate_backend`` on every server connection (PostgreSQL).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time

from tests.chaos.cluster import HARNESS_APP, TIER_TIMEOUT_S, Cluster
from tests.chaos.history import History
from tests.chaos.workload import Model

HOLD_S = TIER_TIMEOUT_S + 1.0
#: faults and their weights: a kill costs a cold restart (seconds), so it comes less often
FAULTS = {
    "postgresql": {"kill": 2, "pause": 3, "row-lock": 3, "terminate-backends": 3},
    "sqlite": {"kill": 1, "pause": 2, "row-lock": 3},
}


class Nemesis(threading.Thread):
    def __init__(
        self,
        seed: int,
        cluster: Cluster,
        model: Model,
        history: History,
        stopping: threading.Event,
    ) -> None:
        super().__init__(name="chaos-nemesis", daemon=True)
        self.rng = random.Random(seed)
        self.cluster = cluster
        self.model = model
        self.history = history
        self.stopping = stopping
        #: set while the kill switch cycle checks every replica: no new fault then
        self.held = threading.Event()
        self.idle = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stopping.wait(self.rng.uniform(0.3, 1.2)):
            if self.held.is_set():
                self.idle.set()
                continue
            self.idle.clear()
            if os.environ.get("RACEFREE_CHAOS_DEBUG"):
                print(f"nemesis {time.monotonic():.1f} {dict(self.history.faults)}", flush=True)
            weights = FAULTS[self.cluster.engine]
            kind = self.rng.choices(list(weights), list(weights.values()))[0]
            started = time.monotonic()
            try:
                if getattr(self, kind.replace("-", "_"))():
                    self.history.fault(kind, time.monotonic() - started)
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                self.errors.append(f"{kind}: {exc!r}")
            finally:
                self.idle.set()
        self.idle.set()

    def hold(self) -> None:
        """Stop injecting and heal everything (the caller then checks every replica)."""
        self.held.set()
        self.idle.wait(60)
        self.cluster.heal()

    def release(self) -> None:
        self.held.clear()

    # -- the faults ------------------------------------------------------------

    def kill(self) -> bool:
        """SIGKILL now; the restart (seconds: a cold ``racefree serve``) runs in the background."""
        replica = self.rng.choice(self.cluster.replicas)
        if not replica.lock.acquire(blocking=False):
            return False
        try:
            self.cluster.kill(replica)
        except BaseException:
            replica.lock.release()
            raise
        down_s = self.rng.uniform(0.2, 1.0)

        def restart() -> None:
            try:
                time.sleep(down_s)
                self.cluster.start(replica)
            except Exception as exc:  # heal() starts it again
                self.errors.append(f"restart of {replica.name}: {exc!r}")
            finally:
                replica.lock.release()

        threading.Thread(target=restart, name=f"chaos-restart-{replica.name}", daemon=True).start()
        return True

    def pause(self) -> bool:
        replica = self.rng.choice(self.cluster.replicas)
        if not replica.lock.acquire(blocking=False):
            return False
        try:
            if not self.cluster.pause(replica):
                return False
            time.sleep(HOLD_S + self.rng.uniform(0, 1.0))
            self.cluster.resume(replica)
            return True
        finally:
            replica.lock.release()

    def row_lock(self) -> bool:
        if self.cluster.engine == "sqlite":
            self._sqlite_write_lock()
            return True
        agents = self.model.live_agents()
        if not agents:
            return False
        agent = self.rng.choice(agents)
        with self.cluster.pg_connect() as conn, conn.transaction():
            conn.execute("SELECT balance FROM accounts WHERE agent_id = %s FOR UPDATE", (agent.id,))
            time.sleep(HOLD_S)
        return True

    def _sqlite_write_lock(self) -> None:
        conn = sqlite3.connect(self.cluster.sqlite_path, timeout=10, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(HOLD_S)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def terminate_backends(self) -> bool:
        with self.cluster.pg_connect() as conn:
            row = conn.execute(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name <> %s",
                (HARNESS_APP,),
            ).fetchone()
        return bool(row and row[0])
