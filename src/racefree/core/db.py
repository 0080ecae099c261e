"""One database API over SQLite and PostgreSQL.

``Database.write()`` opens a write transaction, ``Database.read()`` a read
context; both yield a :class:`Tx` whose SQL uses ``:name`` parameters on either
engine. The drivers (stdlib ``sqlite3``, psycopg 3) are used directly: CAS
statements are the hot path and the ORM layer's overhead shows there
(``bench/``). SQLAlchemy describes the schema and Alembic migrates it.

SQLite: one writer connection per process behind a lock, every write in
``BEGIN IMMEDIATE`` (so a transaction never upgrades a read lock and deadlocks),
WAL, ``synchronous=NORMAL``, ``foreign_keys=ON``, ``busy_timeout``, WAL
checkpoints in a thread of their own (:mod:`racefree.core.checkpoints`); reads use
their own connections. Only one process may *serve* a SQLite file
(:meth:`Database.claim_server`); several serving processes need PostgreSQL.

PostgreSQL: a psycopg connection pool, READ COMMITTED, so a CAS that waited on
a row lock re-checks its WHERE against the winner's committed row. Round trips
are what a request pays for here (issue 11), so:

* a write transaction sends ``BEGIN`` together with its first statement (psycopg
  pipeline mode), and :meth:`Tx.batch` sends several statements -- with the
  ``COMMIT`` when asked -- in one round trip;
* :meth:`Database.hold` keeps the connection a thread took first for the rest
  of a request (the HTTP pipeline holds one per request), so one request checks
  out one connection;
* a connection taken from the pool, and the one a request holds before each
  later use, is checked without a round trip: a server that closed it (a restart,
  ``pg_terminate_backend``, a network reset) has left it readable, and only then
  is it probed with an empty query and replaced if dead. A connection lost in
  use (its reset still on the way, or none coming) makes its idle siblings
  suspect: the pool is drained, each replaced by a new connection;
* while the pool's last connection attempt failed (the server is down or cut
  off), a checkout waits :data:`UNREACHABLE_WAIT_S`, not the pool's timeout,
  so requests answer 503 at once instead of queueing behind a dead server;
  the pool gives up reconnecting after :data:`RECONNECT_TIMEOUT_S` and the
  next checkout starts a fresh attempt, so a server that is back is used by
  the first request that asks.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import logging
import os
import re
import select
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache, partial
from typing import IO, Any, Protocol

import psycopg
import psycopg.errors
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from racefree.core.checkpoints import Checkpointer
from racefree.core.exceptions import DatabaseError as DatabaseError  # noqa: PLC0414 (re-export)
from racefree.core.exceptions import DatabaseInUse as DatabaseInUse  # noqa: PLC0414 (re-export)
from racefree.core.exceptions import DatabaseUnavailable
from racefree.core.exceptions import WriterBusy as WriterBusy  # noqa: PLC0414 (re-export)

log = logging.getLogger("racefree.db")

Row = dict[str, Any]
Params = Mapping[str, Any]
Statement = tuple[str, Params | None]

MIN_SQLITE_VERSION = (3, 35, 0)  # RETURNING
CLOSE_TIMEOUT_S = 2.0
#: How long a checkout waits for the pool while the server is known unreachable.
UNREACHABLE_WAIT_S = 0.5
#: How long the pool retries a failed connection on its own: briefly, so that reconnecting
#: follows demand (each checkout that finds the pool empty starts a fresh attempt) instead of
#: a backoff that can grow past the outage and keep a recovered server unused.
RECONNECT_TIMEOUT_S = 0.5
#: A checkout re-checks reachability this often while it waits for the pool.
WAIT_SLICE_S = 1.0
NOT_REENTRANT = "write() is not reentrant: pass the open Tx down instead"
COMMITTED = "this write transaction was committed by batch(commit=True): no statement may follow"


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


#: What a database that went away raises (a dead server, a moved file, an exhausted pool):
#: callers that must answer anyway (health checks, shutdown) catch exactly these.
UNAVAILABLE: tuple[type[Exception], ...] = (
    DatabaseError,
    DatabaseUnavailable,
    sqlite3.OperationalError,
    psycopg.OperationalError,
    PoolTimeout,
)


class _Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


Finish = Callable[["Tx", list[Any]], None]


class Tx:
    """One connection inside one transaction (``write``) or read context (``read``)."""

    __slots__ = ("_after_commit", "_conn", "_finishers", "_run", "dialect")

    def __init__(self, dialect: Dialect, conn: Any, *, deferrable: bool = False) -> None:
        self.dialect = dialect
        self._conn = conn
        # SQLite's connection and PostgreSQL's stand-ins (a write transaction, prefetched
        # reads) take the statement as written; a bare psycopg connection gets it sent
        plain = dialect is Dialect.SQLITE or isinstance(conn, (_PgTransaction, _Prefetched))
        self._run: Callable[[str, Params], Any] = conn.execute if plain else partial(_send, conn)
        self._after_commit: list[Callable[[], None]] = []
        self._finishers: dict[str, tuple[Finish, list[Any]]] | None = {} if deferrable else None

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this write transaction has committed (never on rollback).

        For effects outside the database that must describe only what happened --
        a log line of a domain event -- never for anything that must be atomic with it.
        """
        self._after_commit.append(callback)

    def _committed(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # the commit stands; a failing observer must not undo the answer
                log.exception("after-commit callback failed")

    def defer(self, key: str, item: Any, finish: Finish) -> None:
        """Queue ``item`` for ``finish(tx, items)``, run as the last statements before COMMIT.

        For work that takes a lock everyone shares (the audit chain head): taken last, it
        is held only while committing, and no transaction waits for it while holding it
        -- no deadlock with the row locks taken earlier in any order. Without a
        transaction to wait for (a read, an autocommit connection) it runs now. Work
        deferred inside a savepoint that is rolled back is not undone: defer outside one.
        """
        if self._finishers is None:
            finish(self, [item])
            return
        entry = self._finishers.get(key)
        if entry is None:
            self._finishers[key] = (finish, [item])
        else:
            entry[1].append(item)

    def finish(self) -> None:
        """Run the deferred work, in the order it was first deferred (``write`` calls this)."""
        while self._finishers:
            key = next(iter(self._finishers))
            finish, items = self._finishers.pop(key)
            finish(self, items)

    def execute(self, sql: str, params: Params | None = None) -> int:
        """Run a statement; return the number of rows it changed."""
        cursor: _Cursor = self._run(sql, params or {})
        return cursor.rowcount

    def one(self, sql: str, params: Params | None = None) -> Row | None:
        row: Row | None = self._run(sql, params or {}).fetchone()
        return row

    def all(self, sql: str, params: Params | None = None) -> list[Row]:
        rows: list[Row] = self._run(sql, params or {}).fetchall()
        return rows

    def scalar(self, sql: str, params: Params | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def batch(self, statements: Sequence[Statement], *, commit: bool = False) -> list[list[Row]]:
        """Run ``statements`` in order; the rows each returned (``[]`` for none).

        PostgreSQL sends them in one round trip (pipeline mode), so a statement's
        parameters cannot depend on an earlier one's result -- but each statement
        still sees what the earlier ones did (READ COMMITTED: a new snapshot per
        statement, taken after the locks the earlier ones waited for). In a write
        transaction ``commit=True`` sends the ``COMMIT`` in the same round trip:
        the transaction ends there, and an error in any statement rolls all of it
        back. SQLite runs them one by one (its commit is the write block's end).
        """
        if self.dialect is Dialect.SQLITE:
            return [self._conn.execute(sql, params or {}).fetchall() for sql, params in statements]
        if isinstance(self._conn, _PgTransaction):
            # deferred work (the audit chain's append) must run before the COMMIT: with
            # some queued, the block's end commits instead
            return self._conn.batch(statements, commit=commit and not self._finishers)
        conn = self._conn.conn if isinstance(self._conn, _Prefetched) else self._conn
        return _pg_batch(conn, statements)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect is Dialect.SQLITE


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=4096)
def pg_sql(sql: str) -> str:
    """Translate ``:name`` parameters to psycopg's ``%(name)s`` (``::casts`` are kept)."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


#: psycopg keeps how it parsed a statement's ``%(name)s`` placeholders only for statements
#: up to this size (``psycopg._queries.MAX_CACHED_STATEMENT_LENGTH``); a longer one is
#: parsed again at every call.
PSYCOPG_CACHED_BYTES = 4096


@lru_cache(maxsize=256)
def native_sql(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with PostgreSQL's own ``$n`` placeholders, and the parameter named by each."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    return _PARAM.sub(number, sql), tuple(numbers)


@lru_cache(maxsize=4096)
def _wire(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """How ``sql`` is sent: psycopg's named form, or -- past psycopg's parse cache -- the
    native form with its parameters' order (decided once per statement)."""
    named = pg_sql(sql)
    if len(named) <= PSYCOPG_CACHED_BYTES:
        return named, None
    return native_sql(sql)


def _send(conn: psycopg.Connection[Any], sql: str, params: Params | None) -> Any:
    """Run one statement. A long one (the one-statement payment, 5 KB) goes with native
    placeholders: psycopg would parse it again at every call, which cost more than a
    round trip."""
    query, names = _wire(sql)
    values = params or {}
    if names is None:
        return conn.execute(query, values)
    return psycopg.RawCursor(conn).execute(query, [values[name] for name in names])


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _rows(cursor: Any) -> list[Row]:
    """The rows a psycopg cursor got (``[]`` for a statement that returns none)."""
    return list(cursor.fetchall()) if cursor.description is not None else []


def _pg_batch(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    *,
    begin: bool = False,
    commit: bool = False,
) -> list[list[Row]]:
    """``statements`` (optionally between ``BEGIN`` and ``COMMIT``) in one round trip."""
    with conn.pipeline():
        if begin:
            conn.execute("BEGIN")
        cursors = [_send(conn, sql, params) for sql, params in statements]
        if commit:
            conn.execute("COMMIT")
    return [_rows(c) for c in cursors]


class _PgTransaction:
    """A PostgreSQL write transaction whose ``BEGIN`` travels with its first statement.

    Stands in for the connection inside :class:`Tx` (``execute`` is all ``Tx``
    calls), so every statement of the block -- through any ``Tx`` made on it --
    joins the one transaction.
    """

    __slots__ = ("begun", "conn", "done")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.begun = False
        self.done = False

    def execute(self, sql: str, params: Params | None = None) -> Any:
        if self.done:
            raise DatabaseError(COMMITTED)
        if self.begun:
            return _send(self.conn, sql, params)
        self.begun = True
        with self.conn.pipeline():
            self.conn.execute("BEGIN")
            cursor = _send(self.conn, sql, params)
        return cursor

    def batch(self, statements: Sequence[Statement], *, commit: bool) -> list[list[Row]]:
        if self.done:
            raise DatabaseError(COMMITTED)
        if commit and not self.begun and len(statements) == 1:
            # the whole transaction is one statement: autocommit makes it one (no BEGIN,
            # no COMMIT, and no pipeline, whose bookkeeping costs more than it saves here)
            self.begun = self.done = True
            [(sql, params)] = statements
            return [_rows(_send(self.conn, sql, params))]
        begin, self.begun = not self.begun, True
        rows = _pg_batch(self.conn, statements, begin=begin, commit=commit)
        self.done = commit
        return rows

    def finish(self) -> None:
        if self.begun and not self.done:
            self.done = True
            self.conn.execute("COMMIT")

    def abandon(self) -> None:
        """Roll back after an error (a statement's, or the block's own)."""
        if self.begun and not self.done and not self.conn.closed:
            self.done = True
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")


@dataclass(frozen=True)
class DatabaseOptions:
    pool_size: int = 20
    busy_timeout_ms: int = 5000
    readers: int = 8


class Database(abc.ABC):
    """A database built from a URL; see the module docstring."""

    dialect: Dialect
    url: str

    @staticmethod
    def from_url(url: str, options: DatabaseOptions | None = None) -> Database:
        options = options or DatabaseOptions()
        backend = make_url(url).get_backend_name()
        if backend == "sqlite":
            return SQLiteDatabase(url, options)
        if backend in ("postgresql", "postgres"):
            return PostgresDatabase(url, options)
        raise DatabaseError(
            f"unsupported database URL {redact(url)!r}: use sqlite:///path or postgresql://..."
        )

    @abc.abstractmethod
    def write(self) -> contextlib.AbstractContextManager[Tx]:
        """A write transaction: commits when the block ends, rolls back on any exception."""

    @abc.abstractmethod
    def read(self) -> contextlib.AbstractContextManager[Tx]:
        """Read-only statements, each seeing the latest committed data."""

    def prefetch(self, reads: Sequence[Statement]) -> None:  # noqa: B027 - optional
        """Within a :meth:`hold` block on PostgreSQL: run these reads now, together, as one
        prepared statement; this thread's next read of the same statement with the same
        parameters takes the rows read here instead of asking again (once each; the rows
        are as fresh as a read made at this point). For reads of at most one row: a read
        that finds more leaves all of them to be made on their own. SQLite, where a read
        is no round trip: nothing."""

    def release(self) -> None:  # noqa: B027 - nothing to release by default
        """Within a :meth:`hold` block: give the held connection back now, and take one per
        statement for the rest of it (before waiting on something else, e.g. an executor)."""

    def without_waiting(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, this thread's first write does not wait for the writer.

        SQLite: if the writer is taken -- by another thread of this process or by
        another process -- that write raises :class:`WriterBusy` before it begins, so
        nothing has been committed and the caller may do all of its work again where
        waiting is harmless (the HTTP pipeline: the event loop, then a worker thread).
        Later writes in the block wait as ever: once one has committed, starting over
        elsewhere would do it twice. PostgreSQL: nothing to do (its requests run in
        worker threads).
        """
        return contextlib.nullcontext()

    def waits_ahead(self) -> None:
        """Say, before writing anything, that what comes next may wait: several writes
        (each after the last committed), an executor's retries and their sleeps.

        Within :meth:`without_waiting` (SQLite) it raises :class:`WriterBusy`, so the
        caller is served again where waiting is harmless; elsewhere it does nothing.
        """
        return None  # PostgreSQL: its requests run in worker threads, where they may wait

    def hold(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, this thread's reads and writes share one connection.

        PostgreSQL: the connection the first of them takes is kept until the
        block ends (one checkout per request); a read inside a write still uses
        another connection, so it sees only committed data. SQLite: nothing to do.
        """
        return contextlib.nullcontext()

    @abc.abstractmethod
    def sqlalchemy_url(self) -> str:
        """The URL for SQLAlchemy/Alembic, with psycopg 3 as the PostgreSQL driver."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def claim_server(self) -> None:
        """Declare this process a server of the database (refused if SQLite is served)."""

    @abc.abstractmethod
    def probe(self, sql: str, timeout_s: float) -> Any:
        """The first value of one read-only ``sql`` on a fresh connection (readiness checks).

        A fresh connection, never the pool: a probe must tell whether the database
        answers *now*, and must not queue behind (or be stuck with) pooled connections
        that a dead database left broken. Raises :class:`DatabaseError` when it does not
        answer within about ``timeout_s``.
        """

    def check_present(self) -> None:
        """Raise :class:`DatabaseError` when the database is visibly gone, without I/O to it
        (SQLite: its file was moved or deleted); a cheap check for health answers.

        By default nothing to check: a gone server shows in the read itself.
        """
        return

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SQLiteDatabase(Database):
    dialect = Dialect.SQLITE

    def __init__(self, url: str, options: DatabaseOptions) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise DatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old: racefree needs 3.35 or newer"
            )
        database = make_url(url).database
        if not database or database == ":memory:":
            raise DatabaseError("racefree needs a SQLite file (sqlite:///path/to/file.db)")
        self.url = url
        self.path = os.path.abspath(database)
        self._options = options
        self._busy_timeout = f"PRAGMA busy_timeout={int(options.busy_timeout_ms)}"
        self._write_lock = threading.Lock()
        self._writer_owner: int | None = None
        self._local = threading.local()
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's, off the path
        self._checkpoints = Checkpointer(self._connect, self._write_lock)
        self._file = _identity(self.path)
        # idle readers, most recent last: list.pop() and append() are atomic, and cost a
        # tenth of a queue's locked get and put (a request makes two or three reads)
        self._readers: list[sqlite3.Connection] = []
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._server_lock: IO[bytes] | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,  # we issue BEGIN IMMEDIATE ourselves
            check_same_thread=False,
            timeout=self._options.busy_timeout_ms / 1000,
        )
        conn.row_factory = _dict_row
        conn.execute(self._busy_timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextlib.contextmanager
    def without_waiting(self) -> Iterator[None]:
        self._local.eager = self._local.waitless = True
        try:
            yield
        finally:
            self._local.eager = self._local.waitless = False

    def waits_ahead(self) -> None:
        if getattr(self._local, "waitless", False):
            raise WriterBusy

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        me = threading.get_ident()
        if self._writer_owner == me:
            raise DatabaseError(NOT_REENTRANT)
        eager = getattr(self._local, "eager", False)
        if eager:
            self._local.eager = False  # the first write only (see without_waiting)
            if self._checkpoints.restarting or not self._write_lock.acquire(blocking=False):
                raise WriterBusy
        else:
            self._checkpoints.wait_for_restart()
            self._write_lock.acquire()
        try:
            self._writer_owner = me
            conn = self._writer
            try:
                if eager:
                    self._begin_without_waiting(conn)
                else:
                    conn.execute("BEGIN IMMEDIATE")
                tx = Tx(Dialect.SQLITE, conn, deferrable=True)
                try:
                    yield tx
                    tx.finish()
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                self._checkpoints.committed()
            finally:
                self._writer_owner = None
        finally:
            self._write_lock.release()
        tx._committed()

    def _begin_without_waiting(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout=0")  # another process holds the file's write lock?
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                raise WriterBusy from None
            raise
        finally:
            conn.execute(self._busy_timeout)

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        try:
            conn = self._readers.pop()
        except IndexError:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            with self._readers_lock:
                self._all_readers.append(conn)
        try:
            yield Tx(Dialect.SQLITE, conn)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._readers.append(conn)

    def sqlalchemy_url(self) -> str:
        return f"sqlite:///{self.path}"

    def check_present(self) -> None:
        # open connections keep reading a file that was moved or deleted: ask the path
        if _identity(self.path) != self._file:
            raise DatabaseError(f"{self.path} is no longer the database this server opened")

    def probe(self, sql: str, timeout_s: float) -> Any:
        # read-only URI: a missing file is an error, not a new empty database
        uri = f"file:{urllib.parse.quote(self.path)}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=timeout_s)
            try:
                row = conn.execute(sql).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot read {self.path}: {exc}") from exc
        return None if row is None else row[0]

    def claim_server(self) -> None:
        if self._server_lock is not None:
            return
        handle = open(self.path + ".serve.lock", "wb")  # noqa: SIM115 - held for process life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DatabaseInUse(
                f"another racefree process is already serving {self.path}. "
                "SQLite supports one serving process; to serve from several processes "
                "set RACEFREE_DATABASE_URL=postgresql://..."
            ) from None
        self._server_lock = handle

    def close(self) -> None:
        self._checkpoints.close()
        with self._write_lock:
            self._writer.close()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()
        if self._server_lock is not None:
            self._server_lock.close()
            self._server_lock = None


class PostgresDatabase(Database):
    dialect = Dialect.POSTGRESQL

    def __init__(self, url: str, options: DatabaseOptions) -> None:
        self.url = url
        self._local = threading.local()
        parsed = make_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self._unreachable = threading.Event()  # the pool's last connect attempt failed
        self._pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=options.pool_size,
            # a connection attempt to a server that went silent gives up, never hangs a pool
            # worker (and with it shutdown) for the TCP timeout
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 10},
            # a connection the server dropped (restart, pg_terminate_backend) is found and
            # replaced when it is taken from the pool, not handed to a request to fail on;
            # a round trip only when its socket says it may be dead
            check=_check_connection,
            connection_class=_reporting_connection(self._unreachable),
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            open=False,
            name="racefree",
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except Exception as exc:
            self._pool.close()
            raise DatabaseError(f"cannot connect to {redact(url)}: {exc}") from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        # a nested write would be a second transaction on another connection,
        # which can wait forever on the row locks of the first
        if getattr(self._local, "writing", False):
            raise DatabaseError(NOT_REENTRANT)
        self._local.writing = True
        try:
            with self._unavailable_on_lost(), self._connection() as conn:
                transaction = _PgTransaction(conn)
                tx = Tx(Dialect.POSTGRESQL, transaction, deferrable=True)
                try:
                    yield tx
                    tx.finish()
                    transaction.finish()
                except BaseException:
                    transaction.abandon()
                    raise
        finally:
            self._local.writing = False
        tx._committed()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._unavailable_on_lost(), self._connection() as conn:
            prefetched: dict[_ReadKey, list[Row]] | None = getattr(self._local, "prefetched", None)
            if prefetched and conn is getattr(self._local, "held", None):
                yield Tx(Dialect.POSTGRESQL, _Prefetched(conn, prefetched))
                return
            yield Tx(Dialect.POSTGRESQL, conn)

    def prefetch(self, reads: Sequence[Statement]) -> None:
        if not getattr(self._local, "holding", False):
            return
        merged: dict[str, Any] = {}
        for _, params in reads:
            for name, value in (params or {}).items():
                if merged.setdefault(name, value) != value:
                    return  # the reads name one parameter differently: nothing to gain
        with self._unavailable_on_lost(), self._connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            query, names = _wire(_joined(tuple(sql for sql, _ in reads)))
            cursor.execute(query, merged if names is None else [merged[n] for n in names])
            rows = _split(query, cursor)
        if rows is None:
            return  # a read found more than one row: each is made on its own
        self._local.prefetched = {
            _read_key(sql, params): found for (sql, params), found in zip(reads, rows, strict=True)
        }

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if getattr(self._local, "holding", None) is not None:
            yield
            return
        self._local.holding = True
        try:
            yield
        finally:
            self._local.holding = None
            self._let_go()

    def release(self) -> None:
        if getattr(self._local, "holding", None):
            held: psycopg.Connection[Any] | None = getattr(self._local, "held", None)
            if held is None or held.info.transaction_status is _IDLE or held.closed:
                self._local.holding = False  # still inside the block: hold() does not restart
                self._let_go()

    def _let_go(self) -> None:
        self._local.prefetched = None
        held, self._local.held = getattr(self._local, "held", None), None
        if held is not None:
            self._pool.putconn(held)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The thread's held connection when it is free, else one from the pool."""
        if getattr(self._local, "holding", False):
            held = self._held()
            if held is not None:
                yield held
                return
        conn = self._checkout()
        try:
            with conn:
                yield conn
        finally:
            self._pool.putconn(conn)

    def _unavailable_on_lost(self) -> contextlib.AbstractContextManager[None]:
        return _unavailable_on_lost_connection(self._pool.drain)

    def _checkout(self) -> psycopg.Connection[Any]:
        """A connection from the pool, waiting up to the pool's timeout, or only
        :data:`UNREACHABLE_WAIT_S` once the server is known unreachable.

        The wait is taken in slices so that a connection attempt failing meanwhile
        (the first sign of an outage) ends it too.
        """
        deadline = time.monotonic() + self._pool.timeout
        while not self._unreachable.is_set():
            try:
                return self._pool.getconn(min(deadline - time.monotonic(), WAIT_SLICE_S))
            except PoolTimeout:
                if time.monotonic() >= deadline:
                    raise
        return self._pool.getconn(UNREACHABLE_WAIT_S)

    def _held(self) -> psycopg.Connection[Any] | None:
        """The held connection (taken now if none is yet), checked as a checkout is; None
        while it is busy in a transaction (a read inside a write gets another one)."""
        held: psycopg.Connection[Any] | None = getattr(self._local, "held", None)
        if held is not None and held.info.transaction_status is not _IDLE and not held.closed:
            return None
        if held is not None:
            try:
                _check_connection(held)  # dropped since the request's last statement?
            except psycopg.Error:
                self._local.held = None
                self._pool.putconn(held)  # the pool discards it
                held = None
        if held is None:
            held = self._local.held = self._checkout()
        return held

    @contextlib.contextmanager
    def pinned(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection held for the whole block (for session-scoped locks): the thread's
        held one when it is free, so a request that holds one never needs two."""
        with self._unavailable_on_lost(), self._connection() as conn:
            yield conn

    def claim_server(self) -> None:
        """Any number of processes may serve one PostgreSQL database."""

    def probe(self, sql: str, timeout_s: float) -> Any:
        timeout_ms = max(1, int(timeout_s * 1000))
        try:
            with psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(1, round(timeout_s)),
                options=f"-c statement_timeout={timeout_ms}",
            ) as conn:
                row = conn.execute(sql).fetchone()
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot reach {redact(self.url)}: {exc}") from exc
        return None if row is None else row[0]

    def sqlalchemy_url(self) -> str:
        return (
            make_url(self._conninfo)
            .set(drivername="postgresql+psycopg")
            .render_as_string(hide_password=False)
        )

    def close(self) -> None:
        # bounded: a database that went away must not hold the process's exit
        self._pool.close(timeout=CLOSE_TIMEOUT_S)


_IDLE = psycopg.pq.TransactionStatus.IDLE


def _reporting_connection(unreachable: threading.Event) -> type[psycopg.Connection[Any]]:
    """A connection class whose every connect attempt (the pool's) sets or clears
    ``unreachable``."""

    class ReportingConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> ReportingConnection:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.OperationalError:
                if not unreachable.is_set():
                    log.warning("the database stopped answering connection attempts")
                unreachable.set()
                raise
            if unreachable.is_set():
                log.warning("the database answers connection attempts again")
                unreachable.clear()
            return conn

    return ReportingConnection


_ReadKey = tuple[str, tuple[tuple[str, Any], ...]]

#: The column that opens each read's part of a joined prefetch (true: the read found a row).
_FOUND = "racefree_found"


@lru_cache(maxsize=64)
def _joined(reads: tuple[str, ...]) -> str:
    """Reads of at most one row each as one statement, which PostgreSQL prepares once.

    Several statements in one simple query are parsed and planned at every call
    (about a quarter of the database's time for a payment); a pipeline of prepared
    ones costs more in the driver than it saves there. Each read is a ``LATERAL``
    subquery; its part of the row starts with a found marker, so a read that found
    no row is told from one whose columns are all NULL.
    """
    parts = ", ".join(f"r{i}.*" for i in range(len(reads)))
    joins = "".join(
        f" LEFT JOIN LATERAL (SELECT true AS {_FOUND}, q.* FROM ({sql}) AS q LIMIT 2)"
        f" AS r{i} ON true"
        for i, sql in enumerate(reads)
    )
    return f"SELECT {parts} FROM (SELECT 1) AS one{joins}"


#: A joined statement's column names and each read's (marker, end) columns, by statement:
#: psycopg builds ``cursor.description`` anew at every call (a twentieth of a payment's
#: server CPU), and a statement's columns do not change while the schema does not.
_LAYOUTS: dict[str, tuple[list[str], list[tuple[int, int]]]] = {}


def _layout(
    query: str, cursor: psycopg.Cursor[tuple[Any, ...]], width: int
) -> tuple[list[str], list[tuple[int, int]]]:
    layout = _LAYOUTS.get(query)
    if layout is None or len(layout[0]) != width:  # a schema that changed: read it again
        names = [column.name for column in cursor.description or ()]
        starts = [i for i, name in enumerate(names) if name == _FOUND]
        layout = names, list(zip(starts, [*starts[1:], len(names)], strict=True))
        _LAYOUTS[query] = layout
    return layout


def _split(query: str, cursor: psycopg.Cursor[tuple[Any, ...]]) -> list[list[Row]] | None:
    """Each read's rows from a :func:`_joined` statement's; None if one found several."""
    found = cursor.fetchall()
    if len(found) != 1:
        return None  # a read of several rows multiplied the joined row
    [values] = found
    names, parts = _layout(query, cursor, len(values))
    return [
        [dict(zip(names[a + 1 : b], values[a + 1 : b], strict=True))] if values[a] else []
        for a, b in parts
    ]


def _read_key(query: str, params: Params | None) -> _ReadKey:
    return query, tuple(sorted((params or {}).items()))


class _Rows:
    """What a prefetched read found, served like the cursor that would have found it."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows
        self.rowcount = len(rows)

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return self._rows


class _Prefetched:
    """The held connection, answering a prefetched read (once) without a round trip."""

    __slots__ = ("conn", "prefetched")

    def __init__(
        self, conn: psycopg.Connection[Any], prefetched: dict[_ReadKey, list[Row]]
    ) -> None:
        self.conn = conn
        self.prefetched = prefetched

    def execute(self, sql: str, params: Params | None = None) -> Any:
        rows = self.prefetched.pop(_read_key(sql, params), None)
        if rows is not None:
            return _Rows(rows)
        return _send(self.conn, sql, params)


def _check_connection(conn: psycopg.Connection[Any]) -> None:
    """Raise if ``conn`` (taken from the pool, or held by this request since its
    checkout) is dead; a round trip only when it may be.

    An idle connection has nothing to read: a server that ended it (a restart,
    ``pg_terminate_backend``) sent its last message and closed it, which leaves
    the socket readable. Only then is it probed with an empty query (and
    replaced by the pool if the probe fails). A connection that becomes dead
    after this check fails its first statement, answered 503 (below).
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    try:
        readable = bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        readable = True
    if readable:
        ConnectionPool.check_connection(conn)


#: SQLSTATE classes of a lost connection: 08 connection exception, 57P0x shutdown/restart
_LOST = ("08", "57P01", "57P02", "57P03")


@contextlib.contextmanager
def _unavailable_on_lost_connection(on_lost: Callable[[], None]) -> Iterator[None]:
    """A dropped or unobtainable connection as :class:`DatabaseUnavailable` (503), not 500;
    ``on_lost()`` is called when a connection was lost.

    Whether a write whose connection dropped committed is unknown to this
    process, so the answer says so (retryable) rather than guessing.
    """
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseUnavailable(f"no connection within the pool timeout: {exc}") from exc
    except psycopg.OperationalError as exc:
        state = exc.sqlstate or ""
        if exc.sqlstate is None or state.startswith(_LOST[0]) or state in _LOST[1:]:
            on_lost()
            raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
        raise


def _identity(path: str) -> tuple[int, int] | None:
    """The file's (device, inode), or None when nothing is at ``path``."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database url>"
