"""The outbox is gap-free: an event whose transaction commits late is never skipped."""

from __future__ import annotations

import threading

import pytest

from racefree.core import audit
from racefree.core.db import Database
from racefree.events import outbox
from racefree.events.outbox import Batch, Position
from tests.events.support import eventually, held_open, record, wait_until_final

GAP_TYPES = ["GAP_A", "GAP_B", "GAP_B0"]


def _read(db: Database, after: Position, types: list[str] | None = GAP_TYPES) -> Batch:
    with db.read() as tx:
        return outbox.read(tx, after, types=types)


def _head(db: Database) -> Position:
    with db.read() as tx:
        return outbox.head(tx)


def test_events_come_in_order_with_filter_and_resume(db: Database) -> None:
    start = _head(db)
    for name in ("ONE", "TWO", "ONE", "THREE"):
        record(db, name)
    everything = eventually(lambda: _read(db, start, None), lambda b: len(b.events) == 4)
    assert [e.type for e in everything.events] == ["ONE", "TWO", "ONE", "THREE"]
    assert [e.id for e in everything.events] == sorted(e.id for e in everything.events)
    only_one = _read(db, start, ["ONE"])
    assert [e.type for e in only_one.events] == ["ONE", "ONE"]
    # the filtered reader still moves past the events it did not want
    assert only_one.position == everything.position
    with db.read() as tx:
        second = outbox.position_of(tx, everything.events[1].id)
        assert second is not None
        resumed = outbox.read(tx, second)
    assert [e.type for e in resumed.events] == ["ONE", "THREE"]
    payload = everything.events[0].payload()
    assert set(payload) == {"id", "type", "occurred_at", "data"}
    assert payload["type"] == "ONE"


def test_paging_moves_the_position_to_the_last_event_of_a_full_page(db: Database) -> None:
    start = _head(db)
    for _ in range(5):
        record(db, "PAGED")
    # on PostgreSQL a transaction anywhere on the server holds the head back a while:
    # page once all five are final, so each page's size is exact
    wait_until_final(db)
    with db.read() as tx:
        first = outbox.read(tx, start, types=["PAGED"], limit=2)
        assert len(first.events) == 2
        assert first.position == first.events[-1].position
        rest = outbox.read(tx, first.position, types=["PAGED"], limit=10)
    assert len(rest.events) == 3


def test_an_earlier_position_that_commits_last_is_not_skipped(engine: str, db: Database) -> None:
    """A takes its xid first, B commits, A commits last: both read, A first.

    Audit ids are taken as a transaction commits (the audit chain, ``core.audit``),
    so A's event has the *higher* id but the lower txid: in the outbox order
    ``(txid, id)`` it comes before B's. A reader that had moved past B would skip
    it; the reader holds B back until A has ended instead.
    """
    if engine == "sqlite":
        pytest.skip("SQLite has one writer: B cannot commit while A is open")
    start = _head(db)
    with held_open(db, "GAP_A"):
        record(db, "GAP_B")
        held = _read(db, start)
        # B is committed but not final: A (a lower txid) may still commit before it
        assert held.events == []
        assert held.position == start
    after = eventually(lambda: _read(db, held.position), lambda b: len(b.events) == 2)
    assert [e.type for e in after.events] == ["GAP_A", "GAP_B"]
    assert after.events[0].position < after.events[1].position
    assert after.events[0].id > after.events[1].id  # A committed last: the higher id


def test_a_reader_past_a_later_transaction_still_gets_the_open_one(
    engine: str, db: Database
) -> None:
    """B starts first (lower xid), records, A records and stays open, B commits.

    Without the audit chain A's row would take an id between B's two; with it,
    ids follow commit order, so no event ever commits below an id a reader has
    passed. The reader delivers B's events while A is open (B's txid is below
    A's, so they are final) and A's after it commits.
    """
    if engine == "sqlite":
        pytest.skip("SQLite has one writer: the transactions cannot interleave")
    start = _head(db)
    b_started, a_inserted = threading.Event(), threading.Event()

    def b_run() -> None:
        with db.write() as tx:
            tx.scalar("SELECT pg_current_xact_id()")  # B's xid is taken first
            audit.record(tx, "GAP_B0", at=1)
            b_started.set()
            assert a_inserted.wait(30)
            audit.record(tx, "GAP_B", at=1)

    b = threading.Thread(target=b_run)
    b.start()
    assert b_started.wait(30)
    with held_open(db, "GAP_A"):
        a_inserted.set()
        b.join(30)
        first = eventually(lambda: _read(db, start), lambda batch: len(batch.events) == 2)
        assert [e.type for e in first.events] == ["GAP_B0", "GAP_B"]
    a_rows = eventually(lambda: _read(db, first.position), lambda batch: len(batch.events) == 1)
    assert [e.type for e in a_rows.events] == ["GAP_A"]
    assert a_rows.events[0].id > first.events[-1].id  # ids follow commit order
    assert a_rows.events[0].position > first.events[-1].position


def test_sqlite_commit_order_is_id_order(engine: str, db: Database) -> None:
    if engine != "sqlite":
        pytest.skip("SQLite only: PostgreSQL orders events by txid, proven by the gap tests above")
    start = _head(db)
    for name in ("S1", "S2", "S3"):
        record(db, name)
    batch = _read(db, start, None)
    assert [e.position.txid for e in batch.events] == [0, 0, 0]
    assert [e.type for e in batch.events] == ["S1", "S2", "S3"]


def _rewind(db: Database, n: int) -> Position:
    with db.read() as tx:
        return outbox.rewind(tx, n)


def test_rewind_starts_before_the_last_n_final_events(db: Database) -> None:
    """N=0 is the head; N at or above the number of events is the start; N=MAX_PAGE works."""
    for name in ("R1", "R2", "R3"):
        record(db, name)
    wait_until_final(db)
    everything = _read(db, outbox.START, None).events
    assert _rewind(db, 0) == _head(db) == everything[-1].position
    assert [e.type for e in _read(db, _rewind(db, 2), None).events] == ["R2", "R3"]
    assert [e.type for e in _read(db, _rewind(db, 1), ["R1", "R2"]).events] == []  # before types
    assert _rewind(db, len(everything)) == outbox.START
    assert _rewind(db, len(everything) - 1) == everything[0].position
    assert _rewind(db, outbox.MAX_PAGE) == outbox.START
    for _ in range(outbox.MAX_PAGE + 1 - len(everything)):
        record(db, "R4")
    wait_until_final(db)
    with db.read() as tx:
        shown = outbox.read(tx, outbox.rewind(tx, outbox.MAX_PAGE), limit=outbox.MAX_PAGE)
    assert len(shown.events) == outbox.MAX_PAGE
    assert shown.events[0].id == everything[1].id  # 1001 events: all but the first
    assert shown.events[-1].position == _head(db)


def test_rewind_counts_final_events_only_and_a_late_commit_is_shown(
    engine: str, db: Database
) -> None:
    """A takes its xid, B commits: B is not final, so ``rewind(1)`` starts before the last
    final event, and a reader from there gets A then B -- what a follower that started at
    the head before A (with ``after_id``) gets: no event skipped, none twice."""
    if engine == "sqlite":
        pytest.skip("SQLite has one writer: B cannot commit while A is open")
    record(db, "GAP_B0")
    wait_until_final(db)
    follower_start = _head(db)  # a follower that started after GAP_B0 (after_id)
    with held_open(db, "GAP_A"):
        record(db, "GAP_B")
        tail_start = _rewind(db, 1)
        # the last final event is GAP_B0: B (committed, above the head) is not counted
        shown = _read(db, tail_start)
        assert [e.type for e in shown.events] == ["GAP_B0"]
    tail = eventually(lambda: _read(db, tail_start), lambda b: len(b.events) == 3)
    assert [e.type for e in tail.events] == ["GAP_B0", "GAP_A", "GAP_B"]
    followed = _read(db, follower_start)
    assert [e.id for e in followed.events] == [e.id for e in tail.events[1:]]
