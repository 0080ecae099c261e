"""PostgreSQL advisory locks: transaction-scoped by default, session-scoped when pinned.

A transaction-scoped lock (``pg_*advisory_xact_lock``) lives exactly as long
as the transaction that took it, so it protects what that transaction does and
nothing after it -- in particular, taking one in an autocommit call (or an RPC
whose transaction ends on return) protects nothing; use :meth:`hold` or take it
inside the transaction that does the work (:meth:`acquire_xact`). It is also
safe behind transaction-pooling proxies. A session-scoped lock lives as long as
the connection, so it is only offered on a pinned connection (:meth:`session`)
and is released on unlock, on disconnect, or when the holder's process dies.

Try: ``pg_try_advisory_*``; wait: a server-side blocking wait bounded by
``lock_timeout`` (``LOCK_TIMEOUT`` when it runs out). Keys are 64-bit keyed
hashes of namespace + key (:func:`~racefree.core.locks.keys.advisory_key`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors

from racefree.core.clock import Clock
from racefree.core.db import Database, Dialect, PostgresDatabase, Tx
from racefree.core.exceptions import AdvisoryUnavailable as AdvisoryUnavailable  # noqa: PLC0414 (re-export)
from racefree.core.locks import observe
from racefree.core.locks.base import LockBusy, lock_timeout
from racefree.core.locks.keys import advisory_key
from racefree.core.locks.observe import Backend, Outcome

_SAVEPOINT = "racefree_advisory_wait"
_HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1 LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class HeldAdvisoryLock:
    """One advisory lock in ``pg_locks`` (``key_id`` is the 64-bit key)."""

    key_id: int
    pid: int
    granted: bool


def _halves(key_id: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint key: high and low 32 bits as unsigned ``oid``."""
    unsigned = key_id & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def _key_id(hi: int, lo: int) -> int:
    return int.from_bytes(((hi << 32) | lo).to_bytes(8, "big"), "big", signed=True)


def _timeout_ms(wait_s: float) -> int:
    return max(1, round(wait_s * 1000))


class AdvisoryLocks:
    """Advisory locks on a PostgreSQL database; see the module docstring."""

    def __init__(self, db: Database, clock: Clock, *, namespace: str = "racefree") -> None:
        if db.dialect is not Dialect.POSTGRESQL or not isinstance(db, PostgresDatabase):
            raise AdvisoryUnavailable(
                "PostgreSQL advisory locks need a PostgreSQL database "
                "(RACEFREE_DATABASE_URL=postgresql://...); on SQLite use LeaseLocks, "
                "which work on both engines"
            )
        self.db: PostgresDatabase = db
        self.clock = clock
        self.namespace = namespace
        advisory_key(namespace, "")  # validates the namespace now, not at first use

    def key_id(self, key: str) -> int:
        return advisory_key(self.namespace, key)

    # -- transaction-scoped (the default) ----------------------------------------------

    def acquire_xact(self, tx: Tx, key: str, *, wait_s: float = 0.0) -> None:
        """Take ``key`` until ``tx``'s transaction ends (``tx`` must be a write transaction)."""
        key_id = self.key_id(key)
        started = time.monotonic()
        if wait_s <= 0:
            if not tx.scalar("SELECT pg_try_advisory_xact_lock(:k)", {"k": key_id}):
                self._refuse(tx, key, key_id, started, Backend.ADVISORY)
        else:
            self._wait_xact(tx, key, key_id, wait_s, started)
        observe.acquisition(key, Backend.ADVISORY, Outcome.ACQUIRED, _ms_since(started))

    def _wait_xact(self, tx: Tx, key: str, key_id: int, wait_s: float, started: float) -> None:
        # a savepoint, so a timed-out wait leaves the caller's transaction usable
        tx.execute(f"SAVEPOINT {_SAVEPOINT}")
        previous = tx.scalar("SELECT current_setting('lock_timeout')")
        tx.execute(f"SET LOCAL lock_timeout = '{_timeout_ms(wait_s)}ms'")
        try:
            tx.execute("SELECT pg_advisory_xact_lock(:k)", {"k": key_id})
        except psycopg.errors.LockNotAvailable:
            tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            self._time_out(key, wait_s, started, Backend.ADVISORY)
        tx.execute("SELECT set_config('lock_timeout', :v, true)", {"v": previous})
        tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    @contextlib.contextmanager
    def hold(self, key: str, *, wait_s: float = 0.0) -> Iterator[Tx]:
        """A write transaction holding ``key``; the lock ends with the transaction."""
        with self.db.write() as tx:
            self.acquire_xact(tx, key, wait_s=wait_s)
            taken = time.monotonic()
            try:
                yield tx
            finally:
                observe.released(key, Backend.ADVISORY, time.monotonic() - taken)

    # -- session-scoped (pinned connection only) -----------------------------------------

    @contextlib.contextmanager
    def session(self, key: str, *, wait_s: float = 0.0) -> Iterator[psycopg.Connection[Any]]:
        """A pinned connection holding ``key`` until the block ends (or the process dies)."""
        key_id = self.key_id(key)
        started = time.monotonic()
        with self.db.pinned() as conn:
            tx = Tx(Dialect.POSTGRESQL, conn)
            if wait_s <= 0:
                if not tx.scalar("SELECT pg_try_advisory_lock(:k)", {"k": key_id}):
                    self._refuse(tx, key, key_id, started, Backend.ADVISORY_SESSION)
            else:
                self._wait_session(tx, key, key_id, wait_s, started)
            observe.acquisition(key, Backend.ADVISORY_SESSION, Outcome.ACQUIRED, _ms_since(started))
            taken = time.monotonic()
            try:
                yield conn
            finally:
                tx.scalar("SELECT pg_advisory_unlock(:k)", {"k": key_id})
                observe.released(key, Backend.ADVISORY_SESSION, time.monotonic() - taken)

    def _wait_session(self, tx: Tx, key: str, key_id: int, wait_s: float, started: float) -> None:
        tx.execute(f"SET lock_timeout = '{_timeout_ms(wait_s)}ms'")
        try:
            tx.execute("SELECT pg_advisory_lock(:k)", {"k": key_id})
        except psycopg.errors.LockNotAvailable:
            self._time_out(key, wait_s, started, Backend.ADVISORY_SESSION)
        finally:
            tx.execute("RESET lock_timeout")

    # -- introspection -----------------------------------------------------------------

    def holder_pid(self, key: str) -> int | None:
        """The backend pid holding ``key`` in this database, if any."""
        hi, lo = _halves(self.key_id(key))
        with self.db.read() as tx:
            pid = tx.scalar(_HOLDERS, {"hi": hi, "lo": lo})
        return None if pid is None else int(pid)

    def held(self) -> list[HeldAdvisoryLock]:
        """Every 64-bit-key advisory lock granted or awaited in this database."""
        with self.db.read() as tx:
            rows = tx.all(
                "SELECT classid::bigint AS hi, objid::bigint AS lo, pid, granted FROM pg_locks"
                " WHERE locktype = 'advisory' AND objsubid = 1 AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
                " ORDER BY pid"
            )
        return [HeldAdvisoryLock(_key_id(r["hi"], r["lo"]), r["pid"], r["granted"]) for r in rows]

    # -- outcomes ----------------------------------------------------------------------

    def _refuse(self, tx: Tx, key: str, key_id: int, started: float, backend: Backend) -> None:
        hi, lo = _halves(key_id)
        pid = tx.scalar(_HOLDERS, {"hi": hi, "lo": lo})
        holder = None if pid is None else f"pg-backend:{pid}"
        observe.acquisition(key, backend, Outcome.BUSY, _ms_since(started), holder=holder)
        raise LockBusy(key, holder, None, None)

    def _time_out(self, key: str, wait_s: float, started: float, backend: Backend) -> None:
        observe.acquisition(key, backend, Outcome.TIMEOUT, _ms_since(started))
        raise lock_timeout(key, wait_s, None) from None


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
