"""Background workers: one process per sweep at a time (a lease), takeover, kill switch pause."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from racefree import workers
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.locks import LeaseLocks
from racefree.settings import Settings
from racefree.testing import Server, start_server
from racefree.transactions.machine import Status
from racefree.transactions.service import Transactions
from racefree.workers import Sweep, WorkerThread
from tests import factory
from tests.factory import OWNER_PUBLIC
from tests.transactions.conftest import transfer

TTL_S = 5.0


class Counting:
    """A sweep that counts its passes."""

    def __init__(self) -> None:
        self.passes = 0

    def __call__(self) -> int:
        self.passes += 1
        return 0


def _worker(db: Database, clock: ManualClock, sweep: Sweep, holder: str) -> WorkerThread:
    return WorkerThread(
        sweep,
        db=db,
        locks=LeaseLocks(db, clock),
        holder=holder,
        interval_s=0.01,
        ttl_s=TTL_S,
        stopping=threading.Event(),
    )


def test_a_sweep_runs_in_one_process_and_moves_when_that_process_dies(
    db: Database, clock: ManualClock
) -> None:
    counted = Counting()
    sweep = Sweep("counting", counted)
    first, second = _worker(db, clock, sweep, "host:1"), _worker(db, clock, sweep, "host:2")

    for _ in range(3):
        first.tick()
        second.tick()
    assert (first.passes, second.passes) == (3, 0)

    # "host:1" dies holding the lease; "host:2" takes over once the lease has expired
    clock.advance(TTL_S - 1)
    second.tick()
    assert second.passes == 0
    clock.advance(1)
    second.tick()
    assert second.passes == 1

    # a stalled "host:1" that wakes up has lost its lease and does not run the sweep
    first.tick()
    assert (first.passes, second.passes, counted.passes) == (3, 1, 4)


def test_no_sweep_runs_while_the_kill_switch_is_engaged_and_the_lease_is_let_go(
    db: Database, clock: ManualClock
) -> None:
    counted = Counting()
    sweep = Sweep("counting", counted)
    first, second = _worker(db, clock, sweep, "host:1"), _worker(db, clock, sweep, "host:2")
    first.tick()
    with db.write() as tx:
        tx.execute("UPDATE kill_switch SET state = 'ACTIVATED'")
    first.tick()
    second.tick()
    assert counted.passes == 1
    with db.write() as tx:
        tx.execute("UPDATE kill_switch SET state = 'NORMAL'")
    second.tick()  # the lease was released, so no TTL wait
    assert (first.passes, second.passes) == (1, 1)


def test_started_workers_execute_due_transactions_and_stop_cleanly(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    fast = settings.model_copy(update={"worker_interval_s": 0.02, "tier_delay_s": 0})
    service = Transactions(db, clock, fast)
    session = factory.session(
        db, factory.agent(db, owner=OWNER_PUBLIC, balance=100_000), now=clock.now()
    )
    txn_id = service.submit(session, transfer(20_000)).reply.body["transaction_id"]
    handle = workers.start(db, clock, fast, service, holder="host:1")
    try:
        _wait_for(lambda: service.get(txn_id).status is Status.CONFIRMED)
    finally:
        handle.stop()
    assert all(not t.is_alive() for t in handle.threads)
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM locks WHERE key LIKE 'worker:%'") == 0


def _wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _worker_holders(db: Database) -> dict[str, str]:
    with db.read() as tx:
        rows = tx.all("SELECT key, holder FROM locks WHERE key LIKE 'worker:%'")
    return {r["key"]: r["holder"] for r in rows}


def _pid(holder: str) -> int:
    return int(holder.split(":")[1])


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgresql"])  # two servers; SQLite: the tests above
def test_two_servers_on_postgresql_run_each_worker_once_and_take_over_from_a_killed_one(
    db_url: str, db: Database, tmp_path: Path
) -> None:
    env = {
        "RACEFREE_WORKER_INTERVAL_S": "0.2",
        "RACEFREE_WORKER_LEASE_TTL_S": "2",
        "RACEFREE_TIER_DELAY_S": "0",
    }
    servers: list[Server] = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(start_server(db_url, tmp_path / name, env=env))
    try:
        pids = {s.process.pid: s for s in servers}
        _wait_for(lambda: len(_worker_holders(db)) == 4)  # delayed, expiry, stale, idempotency
        holders = _worker_holders(db)
        assert {_pid(h) for h in holders.values()} <= set(pids)  # each lease: one process

        victim_pid = _pid(holders["worker:delayed-execution"])
        survivor = next(s for pid, s in pids.items() if pid != victim_pid)
        os.kill(victim_pid, signal.SIGKILL)
        pids[victim_pid].process.wait()

        _wait_for(lambda: {_pid(h) for h in _worker_holders(db).values()} == {survivor.process.pid})
        # the survivor now does the delayed work: a due DELAY transaction gets executed
        session = factory.session(
            db, factory.agent(db, owner=OWNER_PUBLIC, balance=100_000), now=int(time.time())
        )
        settings = Settings(database_url=db_url, tier_delay_s=0)
        service = Transactions(db, ManualClock(int(time.time())), settings)
        txn_id = service.submit(session, transfer(20_000)).reply.body["transaction_id"]
        _wait_for(lambda: service.get(txn_id).status is Status.CONFIRMED)
        with httpx.Client(base_url=survivor.base_url) as client:
            assert client.get("/health").status_code == 200
    finally:
        for s in servers:
            s.stop()


@pytest.mark.server
def test_a_server_runs_the_workers_and_a_graceful_stop_lets_their_leases_go(
    db_url: str, db: Database, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path, env={"RACEFREE_WORKER_INTERVAL_S": "0.2"})
    try:
        _wait_for(lambda: len(_worker_holders(db)) == 4)  # delayed, expiry, stale, idempotency
        assert {_pid(h) for h in _worker_holders(db).values()} == {server.process.pid}
    finally:
        server.stop()
    assert _worker_holders(db) == {}
