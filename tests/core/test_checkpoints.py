"""core.checkpoints: the WAL is checkpointed beside the writer, and stays bounded."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from racefree.core import checkpoints
from racefree.core.db import Database, DatabaseOptions, SQLiteDatabase

#: Each commit writes a row this large: a page or so of WAL per commit, and then some.
ROW_BYTES = 3000
FRAME_BYTES = 4096 + 24


@pytest.fixture
def sqlite_db(tmp_path: Path) -> SQLiteDatabase:
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'wal.db'}", DatabaseOptions())
    with db.write() as tx:
        tx.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return db


def _write(db: Database, commits: int) -> None:
    for n in range(commits):
        with db.write() as tx:
            tx.execute(
                "INSERT INTO blobs (id, body) VALUES (:id, :body)",
                {"id": n, "body": "x" * ROW_BYTES},
            )


def _checkpointer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "racefree-sqlite-checkpoint"]


def test_the_writer_never_checkpoints_inside_its_commit(sqlite_db: SQLiteDatabase) -> None:
    with sqlite_db.write() as tx:
        assert tx.scalar("PRAGMA wal_autocheckpoint") == 0
    sqlite_db.close()


def test_under_steady_writes_the_wal_starts_over_and_stays_bounded(
    sqlite_db: SQLiteDatabase,
) -> None:
    """A checkpoint beside a busy writer leaves the frames committed meanwhile, and the
    WAL starts over only from a write that finds every frame copied: without the pass
    made holding the writer's lock, 6000 commits of 2-3 pages would leave a WAL of
    12,000 frames or more (18,284 measured).

    That pass waits for the writer's lock behind a gate that new writers wait at: a
    writer that commits back to back would otherwise take the lock again before the
    thread wakes (11,292 frames and 4,932 measured, against at most 2,128 with the
    gate on a machine with three busy-looping processes beside the test)."""
    _write(sqlite_db, 6000)
    wal_frames = os.path.getsize(sqlite_db.path + "-wal") / FRAME_BYTES
    assert wal_frames < 4 * checkpoints.RESTART_FRAMES
    with sqlite_db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM blobs") == 6000
    sqlite_db.close()


def test_closing_stops_the_checkpointer(sqlite_db: SQLiteDatabase) -> None:
    before = len(_checkpointer_threads())
    _write(sqlite_db, checkpoints.COMMITS_PER_CHECKPOINT)  # wakes it: it has started
    assert len(_checkpointer_threads()) == before + 1
    sqlite_db.close()
    assert len(_checkpointer_threads()) == before


def test_a_database_that_never_wrote_much_starts_no_thread(sqlite_db: SQLiteDatabase) -> None:
    """The CLI's short-lived databases: a few commits, no thread."""
    before = len(_checkpointer_threads())
    _write(sqlite_db, checkpoints.COMMITS_PER_CHECKPOINT - 2)
    assert len(_checkpointer_threads()) == before
    sqlite_db.close()
