"""core.db: ``Database.without_waiting`` -- a first write that never waits for the writer.

The HTTP pipeline serves brief requests on the event loop on SQLite; the loop must
never wait for a lock, so the first write there raises ``WriterBusy`` instead,
before anything is committed, and the request is served again in a worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest

from racefree.core.db import Database, WriterBusy

#: Longer than any test here should take to see ``WriterBusy``: the write did not wait.
NO_WAIT_S = 0.5


@pytest.fixture(autouse=True)
def _probe_table(db: Database) -> None:
    """A test-only table: core is tested on no domain's table."""
    with db.write() as tx:
        tx.execute("CREATE TABLE probe (nonce VARCHAR(64) PRIMARY KEY, expires_at BIGINT NOT NULL)")


def _insert(db: Database, nonce: str) -> None:
    with db.write() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES (:n, 1)", {"n": nonce})


def _nonces(db: Database) -> list[str]:
    with db.read() as tx:
        return [row["nonce"] for row in tx.all("SELECT nonce FROM probe ORDER BY nonce")]


@pytest.fixture
def writer_held_by_a_thread(db: Database) -> Iterator[threading.Event]:
    """Another thread of this process holds the writer until the event is set."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write() as tx:
            tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('holder', 1)")
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    yield release
    release.set()
    holder.join(10)


def test_a_free_writer_commits_as_ever(db: Database) -> None:
    with db.without_waiting():
        _insert(db, "a")
    assert _nonces(db) == ["a"]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_writer_taken_by_another_thread_raises_writer_busy_at_once(
    db: Database, writer_held_by_a_thread: threading.Event
) -> None:
    started = time.monotonic()
    with pytest.raises(WriterBusy), db.without_waiting():
        _insert(db, "a")
    assert time.monotonic() - started < NO_WAIT_S
    writer_held_by_a_thread.set()
    time.sleep(0.05)
    _insert(db, "b")  # the writer was given back: nothing was left locked
    assert _nonces(db) == ["b", "holder"]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_file_locked_by_another_process_raises_writer_busy_at_once(
    db: Database, db_url: str
) -> None:
    """Another connection (the CLI, another tool) holds SQLite's write lock: no busy wait."""
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(WriterBusy), db.without_waiting():
            _insert(db, "a")
        assert time.monotonic() - started < NO_WAIT_S
    finally:
        other.execute("ROLLBACK")
        other.close()
    _insert(db, "b")
    assert _nonces(db) == ["b"]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_the_busy_timeout_is_restored_after_a_first_write(db: Database, db_url: str) -> None:
    """Outside the block a write waits for a lock held briefly by another process."""
    with db.without_waiting():
        _insert(db, "a")
    other = sqlite3.connect(
        db_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
    releaser.start()
    try:
        _insert(db, "b")  # waits out the other connection's lock, then commits
    finally:
        releaser.join()
        other.close()
    assert _nonces(db) == ["a", "b"]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_only_the_first_write_in_the_block_may_refuse_to_wait(db: Database) -> None:
    """Once a write has committed, starting over elsewhere would make it twice: later
    writes in the block wait for the writer as ever."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write():
            holding.set()
            release.wait(10)

    with db.without_waiting():
        _insert(db, "first")
        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        threading.Timer(0.2, release.set).start()
        _insert(db, "second")  # waits for the holder, then commits
        holder.join(10)
    assert _nonces(db) == ["first", "second"]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_first_write_that_rolls_back_uses_up_the_no_wait(
    db: Database, writer_held_by_a_thread: threading.Event
) -> None:
    """The no-wait applies to the first write attempt only, whatever became of it."""
    with db.without_waiting():
        with pytest.raises(WriterBusy):
            _insert(db, "a")
        threading.Timer(0.2, writer_held_by_a_thread.set).start()
        _insert(db, "b")  # the second attempt waits
    assert _nonces(db) == ["b", "holder"]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_the_block_is_per_thread(db: Database, writer_held_by_a_thread: threading.Event) -> None:
    """Another thread's writes wait as ever while this one is inside the block."""
    done: list[str] = []

    def write_elsewhere() -> None:
        _insert(db, "elsewhere")
        done.append("elsewhere")

    with db.without_waiting():
        other = threading.Thread(target=write_elsewhere)
        other.start()
        time.sleep(0.1)
        assert done == []  # waiting for the holder, not refused
        writer_held_by_a_thread.set()
        other.join(10)
    assert done == ["elsewhere"]


@pytest.mark.parametrize("engine", ["postgresql"])
def test_postgresql_writes_are_unchanged(db: Database) -> None:
    """PostgreSQL requests run in worker threads: the block changes nothing there."""
    with db.without_waiting():
        _insert(db, "a")
        _insert(db, "b")
    assert _nonces(db) == ["a", "b"]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_work_that_may_wait_is_refused_in_the_block_after_a_write_and_allowed_outside(
    db: Database,
) -> None:
    """``waits_ahead``: a caller about to write several times (or sleep) says so before
    it writes anything more, and is sent where waiting is harmless."""
    db.waits_ahead()  # outside the block: nothing to say
    with db.without_waiting():
        _insert(db, "a")  # the first write, committed
        with pytest.raises(WriterBusy):
            db.waits_ahead()
    db.waits_ahead()
    assert _nonces(db) == ["a"]


@pytest.mark.parametrize("engine", ["postgresql"])
def test_postgresql_never_refuses_work_that_may_wait(db: Database) -> None:
    with db.without_waiting():
        db.waits_ahead()
        _insert(db, "a")
    assert _nonces(db) == ["a"]
