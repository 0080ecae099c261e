"""PostgreSQL helpers for race tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

_WAITING = (
    "SELECT COUNT(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


class _Readable(Protocol):
    """A ``racefree.core.db.Database`` (anything whose ``read()`` yields a ``scalar``)."""

    def read(self) -> AbstractContextManager[Any]: ...


def wait_until_blocked(db: str | _Readable, timeout: float = 30) -> None:
    """Return once some statement on ``db`` (PostgreSQL) waits on a lock; no sleeps to tune.

    ``db`` is a PostgreSQL URL (``postgresql://...``) or a racefree ``Database``.
    Use it to prove that a second writer *blocks* behind the first (and is not
    merely slow) before releasing the first::

        first = threading.Thread(target=hold_the_row_lock); first.start()
        second = threading.Thread(target=try_to_write); second.start()
        wait_until_blocked(database_url)
    """
    count = _counter(db)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count():
            return
        time.sleep(0.005)
    raise AssertionError("no statement ever waited on a lock")


def _counter(db: str | _Readable) -> Callable[[], int]:
    if isinstance(db, str):
        import psycopg

        url = db.replace("postgresql+psycopg://", "postgresql://")

        def from_url() -> int:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(_WAITING).fetchone()
            return int(row[0]) if row else 0

        return from_url

    def from_database() -> int:
        with db.read() as tx:
            return int(tx.scalar(_WAITING) or 0)

    return from_database
