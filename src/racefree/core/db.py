"""One database API over SQLite and PostgreSQL.

``Database.write()`` opens a write transaction, ``Database.read()`` a read
context; both yield a :class:`Tx` whose SQL uses ``:name`` parameters on either
engine. The drivers (stdlib ``sqlite3``, psycopg 3) are used directly: CAS
statements are the hot path and the ORM layer's overhead shows there
(``bench/``). SQLAlchemy describes the schema and Alembic migrates it.

SQLite: one writer connection per process behind a lock, every write in
``BEGIN IMMEDIATE`` (so a transaction never upgrades a read lock and deadlocks),
WAL, ``synchronous=NORMAL``, ``foreign_keys=ON``, ``busy_timeout``; reads use
their own connections. Only one process may *serve* a SQLite file
(:meth:`Database.claim_server`); several serving processes need PostgreSQL.

PostgreSQL: a psycopg connection pool, READ COMMITTED, so a CAS that waited on
a row lock re-checks its WHERE against the winner's committed row.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import logging
import os
import queue
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import IO, Any, Protocol

import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from racefree.core.exceptions import DatabaseError as DatabaseError  # noqa: PLC0414 (re-export)
from racefree.core.exceptions import DatabaseInUse as DatabaseInUse  # noqa: PLC0414 (re-export)
from racefree.core.exceptions import DatabaseUnavailable

log = logging.getLogger("racefree.db")

Row = dict[str, Any]
Params = Mapping[str, Any]

MIN_SQLITE_VERSION = (3, 35, 0)  # RETURNING
CLOSE_TIMEOUT_S = 2.0
NOT_REENTRANT = "write() is not reentrant: pass the open Tx down instead"


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
        self._run = conn.execute if dialect is Dialect.SQLITE else self._pg_execute
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

    def _pg_execute(self, sql: str, params: Params | None) -> _Cursor:
        cursor: _Cursor = self._conn.execute(pg_sql(sql), params)
        return cursor

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

    @property
    def is_sqlite(self) -> bool:
        return self.dialect is Dialect.SQLITE


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=4096)
def pg_sql(sql: str) -> str:
    """Translate ``:name`` parameters to psycopg's ``%(name)s`` (``::casts`` are kept)."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


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
        self._write_lock = threading.Lock()
        self._writer_owner: int | None = None
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._file = _identity(self.path)
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
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
        conn.execute(f"PRAGMA busy_timeout={int(self._options.busy_timeout_ms)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        me = threading.get_ident()
        if self._writer_owner == me:
            raise DatabaseError(NOT_REENTRANT)
        with self._write_lock:
            self._writer_owner = me
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                tx = Tx(Dialect.SQLITE, conn, deferrable=True)
                try:
                    yield tx
                    tx.finish()
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                self._writer_owner = None
        tx._committed()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            with self._readers_lock:
                self._all_readers.append(conn)
        try:
            yield Tx(Dialect.SQLITE, conn)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._readers.put(conn)

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
        self._pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=options.pool_size,
            # a connection attempt to a server that went silent gives up, never hangs a pool
            # worker (and with it shutdown) for the TCP timeout
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 10},
            # a connection the server dropped (restart, pg_terminate_backend) is found and
            # replaced when it is taken from the pool, not handed to a request to fail on
            check=ConnectionPool.check_connection,
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
            with (
                _unavailable_on_lost_connection(),
                self._pool.connection() as conn,
                conn.transaction(),
            ):
                tx = Tx(Dialect.POSTGRESQL, conn, deferrable=True)
                yield tx
                tx.finish()
        finally:
            self._local.writing = False
        tx._committed()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with _unavailable_on_lost_connection(), self._pool.connection() as conn:
            yield Tx(Dialect.POSTGRESQL, conn)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[psycopg.Connection[Any]]:
        """A pool connection held for the whole block (for session-scoped locks)."""
        with self._pool.connection() as conn:
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


#: SQLSTATE classes of a lost connection: 08 connection exception, 57P0x shutdown/restart
_LOST = ("08", "57P01", "57P02", "57P03")


@contextlib.contextmanager
def _unavailable_on_lost_connection() -> Iterator[None]:
    """A dropped or unobtainable connection as :class:`DatabaseUnavailable` (503), not 500.

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
