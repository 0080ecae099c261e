"""Deterministic faults for the tests in this package: held locks, stalled threads, pauses.

Every wait here waits for a fact (a statement queued on a lock, a thread
parked at the writer), never for a tuned time:

* :func:`hold_writer_lock` -- what a slow concurrent writer does to a write:
  PostgreSQL, a harness transaction holding a row ``FOR UPDATE``; SQLite, a
  harness connection holding the database's write lock (``BEGIN IMMEDIATE``).
* :func:`wait_for_lock_waiters` / :func:`wait_until_parked` -- until a
  statement waits on a PostgreSQL lock / a thread waits for SQLite's writer.
* :func:`faulty` -- the real database, with a hook run where a
  request would pause: before a write transaction opens, or after a given
  statement; the domain code above it is untouched.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row

from racefree.core.db import Database, Params, PostgresDatabase, Row, SQLiteDatabase, Tx

HARNESS_APP = "racefree-fault-harness"


class Background(threading.Thread):
    """``fn()`` in a thread; :meth:`outcome` returns its value or raises its exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:
            self.error = exc

    def outcome(self, timeout: float = 60) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the background call never finished"
        if self.error is not None:
            raise self.error
        return self.value


@contextlib.contextmanager
def hold_writer_lock(
    db: Database,
    *,
    account_of: str | None = None,
    row: str | None = None,
) -> Iterator[Tx]:
    """Hold what a write needs, from a harness connection, until the block ends.

    PostgreSQL: the ``accounts`` row of ``account_of`` (or the ``transactions``
    row ``row``) ``FOR UPDATE``. SQLite: the database's write lock. Yields a
    :class:`Tx` on the harness connection, inside its transaction, so a test
    can commit its own writes (an activation) while the lock is held.
    """
    if isinstance(db, PostgresDatabase):
        with psycopg.connect(db.url, application_name=HARNESS_APP, row_factory=dict_row) as conn:
            tx = Tx(db.dialect, conn)
            if account_of is not None:
                tx.one("SELECT 1 FROM accounts WHERE agent_id = :id FOR UPDATE", {"id": account_of})
            if row is not None:
                tx.one("SELECT 1 FROM transactions WHERE id = :id FOR UPDATE", {"id": row})
            yield tx
            conn.commit()
        return
    assert isinstance(db, SQLiteDatabase)
    lite = sqlite3.connect(db.path, isolation_level=None, timeout=30)
    lite.row_factory = _dict_row
    try:
        lite.execute("BEGIN IMMEDIATE")
        yield Tx(db.dialect, lite)
        lite.execute("COMMIT")
    finally:
        lite.close()


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def wait_for_lock_waiters(
    db: Database, count: int = 1, *, query_like: str = "%", timeout: float = 30
) -> None:
    """PostgreSQL: until ``count`` statements (like ``query_like``) wait on a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as tx:
            waiting = tx.scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE :q",
                {"q": query_like},
            )
        if int(waiting) >= count:
            return
        time.sleep(0.005)
    raise AssertionError(f"never {count} statements waiting on a lock")


def wait_until_parked(thread: threading.Thread, timeout: float = 30) -> None:
    """SQLite: until ``thread`` is inside ``Database.write`` without its transaction yet.

    A thread there is queued for the one writer (the in-process lock, or
    ``BEGIN IMMEDIATE`` against another connection's write lock).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident or -1)
        if (
            frame is not None
            and frame.f_code.co_name == "write"
            and "core/db" in (frame.f_code.co_filename.replace("\\", "/"))
        ):
            return
        assert thread.is_alive(), "the thread finished instead of waiting for the writer"
        time.sleep(0.005)
    raise AssertionError("the thread never waited for the writer")


def wait_until_waiting(db: Database, thread: threading.Thread, count: int = 1) -> None:
    """The engine's way of knowing ``thread`` waits for a lock someone else holds."""
    if isinstance(db, PostgresDatabase):
        wait_for_lock_waiters(db, count)
    else:
        wait_until_parked(thread)


class HookedTx(Tx):
    """A :class:`Tx` that calls ``hook(sql, row)`` after each ``one()`` statement."""

    __slots__ = ("_hook",)

    def __init__(self, tx: Tx, hook: Callable[[str, Row | None], None]) -> None:
        super().__init__(tx.dialect, tx._conn)
        self._hook = hook

    def one(self, sql: str, params: Params | None = None) -> Row | None:
        row = super().one(sql, params)
        self._hook(sql, row)
        return row


class _Faulty:
    """The hooks of :func:`faulty`, mixed into the real database's own class."""

    before_write: Callable[[], None] | None
    after_statement: Callable[[str, Row | None], None] | None

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            hook()
        with super().write() as tx:  # type: ignore[misc]
            yield tx if self.after_statement is None else HookedTx(tx, self.after_statement)

    def close(self) -> None:
        """The real database belongs to the runtime fixture."""


def faulty(
    inner: Database,
    *,
    before_write: Callable[[], None] | None = None,
    after_statement: Callable[[str, Row | None], None] | None = None,
) -> Any:
    """The real database (same pool / writer, same class for isinstance checks), plus one-shot
    hooks where a request would pause: before its next write transaction opens, or after a
    statement. The domain code above it is untouched."""
    cls = type(f"Faulty{type(inner).__name__}", (_Faulty, type(inner)), {})
    db: Any = object.__new__(cls)
    db.__dict__.update(inner.__dict__)
    db.before_write = before_write
    db.after_statement = after_statement
    return db


def payment_of_the_only_transaction(db: Database) -> tuple[str, int, int]:
    """(status, ledger entries, account balance) of the one transaction in ``db``."""
    with db.read() as tx:
        row = tx.one(
            "SELECT t.status, (SELECT COUNT(*) FROM ledger_entries l"
            " WHERE l.transaction_id = t.id) AS paid, c.balance FROM transactions t"
            " JOIN accounts c ON c.agent_id = t.agent_id"
        )
    assert row is not None
    return str(row["status"]), int(row["paid"]), int(row["balance"])
