"""Background workers of ``racefree serve``: delayed execution, approval expiry, stale release.

This module composes domains (transactions' sweeps, the kill switch's state),
so it sits beside ``runtime`` and ``cli`` above them, not inside one.

Each worker is a thread that, every ``RACEFREE_WORKER_INTERVAL_S``:

1. does nothing while the kill switch is not ``NORMAL`` (and lets its lease go);
2. holds the lease ``worker:<name>`` (:class:`~racefree.core.locks.LeaseLocks`):
   acquires it when free or expired -- taking over from a crashed process --
   or renews the one it holds; when another live process holds it, skips;
3. runs one sweep (:class:`~racefree.transactions.service.Transactions`).

So with several processes serving one PostgreSQL database each worker runs in
exactly one of them at a time, and moves to another within one lease TTL
(``RACEFREE_WORKER_LEASE_TTL_S``) when that process dies. The lease is about
not doing the work twice, not about correctness: every move a sweep makes is a
CAS, so even two sweeps racing would execute or expire a transaction once.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Gauge

from racefree.core import idempotency
from racefree.core.clock import Clock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.core.ids import new_id
from racefree.core.locks import Heartbeat, Lease, LeaseLocks, LockBusy
from racefree.events.delivery import Deliverer, DeliveryLoop
from racefree.killswitch import status as kill_switch_status
from racefree.settings import Settings
from racefree.transactions.service import Transactions

log = logging.getLogger("racefree.workers")

LAST_SUCCESS = Gauge(
    "racefree_worker_last_success_timestamp_seconds",
    "When this process's worker last completed a sweep (epoch seconds), by worker.",
    ["worker"],
)

#: How long shutdown waits for the workers, all together.
STOP_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Sweep:
    """One background job: a name (its lease is ``worker:<name>``) and one pass of work."""

    name: str
    run: Callable[[], int]

    @property
    def lease_key(self) -> str:
        return f"worker:{self.name}"


def sweeps(service: Transactions) -> list[Sweep]:
    return [
        Sweep("delayed-execution", service.run_due),
        Sweep("approval-expiry", service.expire_due),
        Sweep("stale-release", service.release_stale),
        Sweep("idempotency-expiry", functools.partial(_sweep_idempotency, service)),
    ]


def _sweep_idempotency(service: Transactions) -> int:
    """Delete expired ``Idempotency-Key`` answers (a batch per pass)."""
    with service.db.write() as tx:
        return idempotency.sweep(tx, now=service.clock.now())


def holder_id() -> str:
    """Who holds a lease: host and pid (for operators), plus a nonce (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class WorkerThread(threading.Thread):
    """Runs one :class:`Sweep` while holding its lease."""

    def __init__(
        self,
        sweep: Sweep,
        *,
        db: Database,
        locks: LeaseLocks,
        holder: str,
        interval_s: float,
        ttl_s: float,
        stopping: threading.Event,
    ) -> None:
        super().__init__(name=f"racefree-{sweep.name}", daemon=True)
        self.sweep = sweep
        self.db = db
        self.locks = locks
        self.holder = holder
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self.stopping = stopping
        self.lease: Lease | None = None
        self.passes = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # a worker must survive a bad pass (database restart, bug)
                log.exception("worker %s failed a pass", self.sweep.name)
            self.stopping.wait(self.interval_s)
        self._let_go()

    def tick(self) -> None:
        if not self._system_normal():
            self._let_go()
            return
        if not self._hold():
            return
        assert self.lease is not None
        # renew while the sweep runs, so a sweep longer than the TTL is not taken over mid-way
        with Heartbeat(self.locks, self.lease) as beat:
            done = self.sweep.run()
        self.lease = None if beat.lost else beat.lease
        self.passes += 1
        LAST_SUCCESS.labels(self.sweep.name).set(time.time())
        if done:
            log.info("worker %s handled %d items", self.sweep.name, done)

    def _system_normal(self) -> bool:
        with self.db.read() as tx:
            return kill_switch_status.is_normal(tx)

    def _hold(self) -> bool:
        """Keep (renew) or take (acquire) the lease; False when another process has it."""
        if self.lease is not None:
            try:
                self.lease = self.locks.renew(self.lease)
                return True
            except RacefreeError:  # LOCK_LOST: we stalled past the TTL and someone took over
                log.warning("worker %s lost its lease", self.sweep.name)
                self.lease = None
        try:
            self.lease = self.locks.acquire(
                self.sweep.lease_key, holder=self.holder, ttl_s=self.ttl_s, quiet=True
            )
        except LockBusy:
            return False
        log.info("worker %s now runs in %s", self.sweep.name, self.holder)
        return True

    def _let_go(self) -> None:
        if self.lease is not None:
            lease, self.lease = self.lease, None
            try:
                self.locks.release(lease)
            except Exception:  # the lease expires by itself
                log.warning("worker %s could not release its lease", self.sweep.name)


@dataclass
class WorkerHandle:
    """The running workers; :meth:`stop` ends them and releases their leases."""

    threads: list[threading.Thread]
    stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask every worker to stop; wait at most ``timeout_s`` in all, not per thread.

        A worker stuck on a database that went away (waiting for a pool connection)
        is left behind: it is a daemon thread, its lease expires by itself, and a
        gone database must not hold the process's shutdown.
        """
        self.stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if stuck:
            log.warning("workers still busy at shutdown, left to end with the process: %s", stuck)


def start(
    db: Database,
    clock: Clock,
    settings: Settings,
    service: Transactions | None = None,
    *,
    holder: str | None = None,
) -> WorkerHandle:
    """Start one thread per sweep (none when ``RACEFREE_WORKERS_ENABLED=false``) and the
    webhook deliverer (unless ``RACEFREE_WEBHOOK_DELIVERY_ENABLED=false``)."""
    stopping = threading.Event()
    holder = holder or holder_id()
    threads: list[threading.Thread] = []
    if settings.webhook_delivery_enabled:
        threads.append(webhook_deliverer(db, clock, settings, holder=holder, stopping=stopping))
    if not settings.workers_enabled:
        for thread in threads:
            thread.start()
        return WorkerHandle(threads, stopping)
    service = service or Transactions(db, clock, settings)
    locks = LeaseLocks(db, clock)
    threads += [
        WorkerThread(
            sweep,
            db=db,
            locks=locks,
            holder=holder,
            interval_s=settings.worker_interval_s,
            ttl_s=settings.worker_lease_ttl_s,
            stopping=stopping,
        )
        for sweep in sweeps(service)
    ]
    for thread in threads:
        thread.start()
    return WorkerHandle(threads, stopping)


def webhook_deliverer(
    db: Database, clock: Clock, settings: Settings, *, holder: str, stopping: threading.Event
) -> DeliveryLoop:
    """The webhook delivery worker (per-webhook leases, so it runs in every process)."""
    deliverer = Deliverer(db, clock, settings, holder=holder, stopping=stopping)
    return DeliveryLoop(
        deliverer,
        interval_s=settings.events_poll_interval_s,
        threads=settings.webhook_delivery_threads,
        stopping=stopping,
    )


class RuntimeLike(Protocol):
    db: Database
    clock: Clock
    settings: Settings
    transactions: Transactions


def start_workers(runtime: RuntimeLike) -> WorkerHandle:
    """The workers of ``racefree serve`` for ``runtime`` (a :class:`racefree.runtime.Runtime`)."""
    return start(runtime.db, runtime.clock, runtime.settings, runtime.transactions)
