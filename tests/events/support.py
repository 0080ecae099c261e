"""Helpers for the outbox tests: a write transaction held open, polling reads."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from racefree.core import audit
from racefree.core.db import Database

T = TypeVar("T")


@contextlib.contextmanager
def held_open(
    db: Database, event_type: str, *, before: Callable[[], None] | None = None
) -> Iterator[None]:
    """A transaction that has its xid and an audit row, and stays open until the block ends.

    Like every audited change, it takes its transaction id with its first
    write (here, on PostgreSQL, ``pg_current_xact_id()``) and records the row,
    which joins the audit chain (takes its id) only as the transaction commits
    (``core.audit``). So while it is open, any transaction that commits later
    has a higher txid, and its rows are not final until this one ends.
    ``before`` runs inside the transaction before the audit row.
    """
    inserted, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with db.write() as tx:
                if not tx.is_sqlite:
                    tx.scalar("SELECT pg_current_xact_id()")  # the xid, as a first write takes it
                if before is not None:
                    before()
                audit.record(tx, event_type, at=1)
                inserted.set()
                release.wait(60)
        except BaseException as exc:  # surfaced below
            failure.append(exc)
            inserted.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert inserted.wait(30), "the held transaction never inserted"
    try:
        yield
    finally:
        release.set()
        thread.join(30)
    if failure:
        raise failure[0]


def record(db: Database, event_type: str) -> None:
    with db.write() as tx:
        audit.record(tx, event_type, at=1)


def eventually(fn: Callable[[], T], ok: Callable[[T], bool], timeout: float = 60) -> T:
    """Poll ``fn`` until ``ok``: on PostgreSQL any open transaction in the cluster
    (other test runs share the server) holds the outbox head back for a while."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def wait_until_final(db: Database, timeout: float = 60) -> None:
    """Until every committed event is below the outbox head (PostgreSQL: other open
    transactions in the cluster hold the head back for a while)."""
    from racefree.events import outbox

    def caught_up() -> bool:
        with db.read() as tx:
            last = tx.scalar("SELECT MAX(id) FROM audit_log")
            position = outbox.position_of(tx, int(last)) if last is not None else None
            return position is None or position <= outbox.head(tx)

    assert eventually(caught_up, bool, timeout), "the outbox head never caught up"
