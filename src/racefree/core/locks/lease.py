"""Portable lease locks with fencing tokens (SQLite and PostgreSQL).

A lease is a row of ``locks``. Acquiring bumps the key's counter in
``lock_tokens`` (insert-or-increment, in SQL) and then inserts the lease, or
takes over an *expired* lease -- one conditional upsert whose ``WHERE
locks.expires_at_ms <= :now`` is the CAS -- in the same transaction. The new
counter value is the fencing token, so tokens strictly increase per key across
acquisitions, whoever acquires and however the previous holder ended.

On PostgreSQL both steps are one statement (a data-modifying CTE) in
autocommit: one round trip; the row lock on ``lock_tokens`` orders concurrent
acquirers. A refused attempt there still consumes a token (a gap, never a
repeat). On SQLite they are two statements in one ``BEGIN IMMEDIATE``
transaction, rolled back when refused.

Release is the CAS ``DELETE ... WHERE key AND token``; renewal the CAS
``UPDATE ... WHERE key AND token`` -- 0 rows means the lease was taken over
(``LOCK_LOST``). A holder also learns it at its fenced write: :func:`fence`
is the guard a protected write puts in its own CAS, which requires the lease
to be current (same token) and unexpired at write time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from racefree.core.clock import Clock
from racefree.core.condition import Condition
from racefree.core.db import Database, Dialect, PostgresDatabase, Row, Tx
from racefree.core.errors import LockCode, RacefreeError
from racefree.core.locks import observe
from racefree.core.locks.base import Lease, LockBusy, Waiter
from racefree.core.locks.observe import Backend, Outcome

log = logging.getLogger("racefree.locks")

_BUMP = (
    "INSERT INTO lock_tokens (key, last_token) VALUES (:key, 1) "
    "ON CONFLICT (key) DO UPDATE SET last_token = lock_tokens.last_token + 1 "
    "RETURNING last_token"
)
_TAKE_OVER = (
    " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, token = excluded.token,"
    " acquired_at_ms = excluded.acquired_at_ms, expires_at_ms = excluded.expires_at_ms"
    " WHERE locks.expires_at_ms <= :now RETURNING token"
)
_TAKE = (
    "INSERT INTO locks (key, holder, token, acquired_at_ms, expires_at_ms)"
    " VALUES (:key, :holder, :token, :now, :expires)" + _TAKE_OVER
)
_PG_BUMP_AND_TAKE = (
    f"WITH next AS ({_BUMP}) "
    "INSERT INTO locks (key, holder, token, acquired_at_ms, expires_at_ms)"
    " SELECT :key, :holder, next.last_token, :now, :expires FROM next" + _TAKE_OVER
)
_CURRENT = "SELECT key, holder, token, acquired_at_ms, expires_at_ms FROM locks WHERE key = :key"


#: The lease row still ours (key and token): the WHERE of a renewal or a release.
_HELD = "key = :key AND token = :token"


def _lease(row: Row) -> Lease:
    return Lease(
        row["key"],
        row["holder"],
        int(row["token"]),
        int(row["acquired_at_ms"]),
        int(row["expires_at_ms"]),
    )


def fence(lease: Lease, now_ms: int, dialect: Dialect) -> Condition:
    """A condition true only while ``lease`` is current and unexpired.

    Put it in the WHERE of the protected write's CAS; a stale holder's write
    then matches 0 rows. Classify with :meth:`LeaseLocks.check`. On PostgreSQL
    the lease row is locked ``FOR SHARE`` until the write commits: a takeover
    waits for it, and a write that waited on a takeover re-reads the new token
    (a plain EXISTS would read the statement's snapshot and let both commit).
    SQLite runs one writer at a time, so there is nothing to wait for.
    """
    lock = "" if dialect is Dialect.SQLITE else " FOR SHARE"
    return Condition.of(
        "EXISTS (SELECT 1 FROM locks WHERE locks.key = :key"
        f" AND locks.token = :token AND locks.expires_at_ms > :now{lock})",
        key=lease.key,
        token=lease.token,
        now=now_ms,
    )


def lock_lost(lease: Lease, current: Row | None, *, expired: bool = False) -> RacefreeError:
    observe.lost(lease.key)
    details: dict[str, Any] = {"key": lease.key, "token": lease.token, "holder": lease.holder}
    if current is not None and int(current["token"]) != lease.token:
        details.update(current_holder=current["holder"], current_token=int(current["token"]))
    why = "its lease expired" if expired else "another holder took the lock"
    return RacefreeError(
        LockCode.LOCK_LOST,
        detail=f"lock {lease.key!r} (token {lease.token}) is no longer held: {why}; "
        "nothing was written",
        details=details,
    )


class LeaseLocks:
    """Lease locks in the ``locks`` table; see the module docstring."""

    backend = Backend.LEASE

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._released = threading.Condition()

    # -- acquire / renew / release ---------------------------------------------------

    def acquire(
        self, key: str, *, holder: str, ttl_s: float, wait_s: float = 0.0, quiet: bool = False
    ) -> Lease:
        """Take the lock: ``LockBusy`` if held and ``wait_s == 0``, else ``LOCK_TIMEOUT``.

        ``quiet``: a refusal is routine (a standby polling for a lease someone holds)
        and logs at DEBUG, so an idle replica does not log a line per poll.
        """
        ttl_ms = max(1, round(ttl_s * 1000))
        started = time.monotonic()
        try:
            if wait_s <= 0:
                lease = self._try(key, holder, ttl_ms)
            else:
                lease = Waiter(self._released).until(
                    key, wait_s, lambda: self._try(key, holder, ttl_ms)
                )
        except LockBusy as busy:
            observe.acquisition(
                key,
                self.backend,
                Outcome.BUSY,
                _ms_since(started),
                holder=busy.holder,
                quiet=quiet,
            )
            raise
        except RacefreeError as exc:
            if exc.code is LockCode.LOCK_TIMEOUT:
                observe.acquisition(
                    key,
                    self.backend,
                    Outcome.TIMEOUT,
                    _ms_since(started),
                    holder=exc.details.get("holder"),
                )
            raise
        observe.acquisition(
            key,
            self.backend,
            Outcome.ACQUIRED,
            _ms_since(started),
            holder=holder,
            token=lease.token,
        )
        return lease

    def _try(self, key: str, holder: str, ttl_ms: int) -> Lease:
        now = self.clock.now_ms()
        params = {"key": key, "holder": holder, "now": now, "expires": now + ttl_ms}
        if self.db.dialect is Dialect.POSTGRESQL:
            token, current = self._try_postgres(params)
        else:
            with self.db.write() as tx:
                bumped = tx.scalar(_BUMP, params)
                token = tx.scalar(_TAKE, {**params, "token": bumped})
                current = None if token is not None else tx.one(_CURRENT, params)
                if current is not None:
                    raise _busy(current, now)  # rolls the token bump back
        if token is None:
            raise _busy(current, now) if current else LockBusy(key, None, None, None)
        return Lease(key, holder, int(token), now, now + ttl_ms)

    def _try_postgres(self, params: dict[str, Any]) -> tuple[Any, Row | None]:
        """One autocommit statement; if refused, who holds the lock (one more SELECT)."""
        with self._autocommit() as tx:
            for _ in range(3):  # a refusal whose holder left before the SELECT: try again
                token = tx.scalar(_PG_BUMP_AND_TAKE, params)
                if token is not None:
                    return token, None
                current = tx.one(_CURRENT, params)
                if current is not None:
                    return None, current
        return None, None

    def renew(self, lease: Lease, *, ttl_s: float | None = None) -> Lease:
        """Extend the lease (heartbeat) by its TTL; ``LOCK_LOST`` if it was taken over."""
        ttl_ms = max(1, round(ttl_s * 1000)) if ttl_s is not None else lease.ttl_ms
        now = self.clock.now_ms()
        params = {"key": lease.key, "token": lease.token, "expires": now + ttl_ms}
        with self._statement() as tx:
            changed = tx.execute(
                self._relaxed("UPDATE locks SET expires_at_ms = :expires", _HELD),
                params,
            )
            current = tx.one(_CURRENT, params) if not changed else None
        if not changed:
            raise lock_lost(lease, current)
        return Lease(
            lease.key, lease.holder, lease.token, lease.acquired_at_ms, now + ttl_ms, ttl_ms
        )

    def release(self, lease: Lease) -> bool:
        """Give the lock up; ``False`` if it was no longer ours (expired and taken over)."""
        with self._statement() as tx:
            gone = tx.execute(
                self._relaxed("DELETE FROM locks", _HELD),
                {"key": lease.key, "token": lease.token},
            )
        if gone:
            observe.released(
                lease.key, self.backend, (self.clock.now_ms() - lease.acquired_at_ms) / 1000
            )
            with self._released:
                self._released.notify_all()
        return bool(gone)

    @contextlib.contextmanager
    def lock(self, key: str, *, holder: str, ttl_s: float, wait_s: float = 0.0) -> Iterator[Lease]:
        """``with locks.lock(key, ...) as lease:`` -- released when the block ends."""
        lease = self.acquire(key, holder=holder, ttl_s=ttl_s, wait_s=wait_s)
        try:
            yield lease
        finally:
            self.release(lease)

    # -- fencing ---------------------------------------------------------------------

    def check(self, tx: Tx, lease: Lease, now_ms: int) -> None:
        """Raise ``LOCK_LOST`` unless ``lease`` is current and unexpired (a fence miss)."""
        current = tx.one(_CURRENT, {"key": lease.key})
        if current is None or int(current["token"]) != lease.token:
            raise lock_lost(lease, current)
        if int(current["expires_at_ms"]) <= now_ms:
            raise lock_lost(lease, current, expired=True)

    # -- introspection ---------------------------------------------------------------

    def current(self, key: str) -> Lease | None:
        """The unexpired lease on ``key``, if any."""
        with self.db.read() as tx:
            row = tx.one(_CURRENT, {"key": key})
        if row is None or int(row["expires_at_ms"]) <= self.clock.now_ms():
            return None
        return _lease(row)

    def last_token(self, key: str) -> int | None:
        """The newest fencing token ever issued for ``key``."""
        with self.db.read() as tx:
            token = tx.scalar("SELECT last_token FROM lock_tokens WHERE key = :key", {"key": key})
        return None if token is None else int(token)

    def held(self, prefix: str = "") -> list[Lease]:
        """Every unexpired lease (whose key starts with ``prefix``), by key."""
        with self.db.read() as tx:
            rows = tx.all(
                "SELECT key, holder, token, acquired_at_ms, expires_at_ms FROM locks"
                " WHERE expires_at_ms > :now AND substr(key, 1, :n) = :prefix ORDER BY key",
                {"now": self.clock.now_ms(), "n": len(prefix), "prefix": prefix},
            )
        return [_lease(r) for r in rows]

    # -- plumbing --------------------------------------------------------------------

    @contextlib.contextmanager
    def _autocommit(self) -> Iterator[Tx]:
        """PostgreSQL: one pool connection in autocommit, each statement its own transaction."""
        assert isinstance(self.db, PostgresDatabase)
        with self.db.pinned() as conn:
            yield Tx(Dialect.POSTGRESQL, conn)

    def _relaxed(self, statement: str, where: str) -> str:
        """On PostgreSQL, ``statement`` committed without waiting for the WAL flush.

        Only for releases and renewals: losing one in a database crash is safe -- a lost
        release leaves the lease to expire; a lost renewal shortens the lease, and the fenced
        write checks the lease as the database has it. (Acquisitions stay durable: a token
        must never be issued twice.) ``set_config(..., true)`` lasts for the statement's own
        transaction, which is all an autocommit statement has: one round trip, no fsync.
        """
        if self.db.dialect is not Dialect.POSTGRESQL:
            return f"{statement} WHERE {where}"
        # the CTE runs only if the statement references it: the WHERE does
        return (
            "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS v) "
            f"{statement} WHERE ({where}) AND EXISTS (SELECT 1 FROM relaxed)"
        )

    def _statement(self) -> contextlib.AbstractContextManager[Tx]:
        """Where a single-statement write runs: autocommit on PostgreSQL, a write tx on SQLite."""
        if self.db.dialect is Dialect.POSTGRESQL:
            return self._autocommit()
        return self.db.write()


def _busy(current: Row, now_ms: int) -> LockBusy:
    return LockBusy(
        current["key"],
        current["holder"],
        int(current["acquired_at_ms"]),
        int(current["expires_at_ms"]),
        now_ms=now_ms,
    )


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


class Heartbeat:
    """Renews a lease in a background thread every ``every_s`` while the block runs.

    ``lease`` is the newest renewal; ``lost`` is set (and renewing stops) when
    a renewal finds the lease taken over. The holder still learns it for sure
    at its fenced write.
    """

    def __init__(self, locks: LeaseLocks, lease: Lease, every_s: float | None = None) -> None:
        self.every_s = every_s if every_s is not None else max(lease.ttl_ms / 3000, 0.01)
        self.lease = lease
        self.lost: RacefreeError | None = None
        self._locks = locks
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat:{lease.key}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.lease = self._locks.renew(self.lease)
            except RacefreeError as exc:
                self.lost = exc
                return
            except Exception:  # a transient database error: the next beat may succeed
                log.exception("lock heartbeat failed key=%s", self.lease.key)
