"""SQLite WAL checkpoints off the writer's path.

By default SQLite copies the WAL back into the database file inside the COMMIT
that takes the WAL past 1000 pages, fsyncs included. racefree's one writer holds
its lock across that COMMIT, and a brief request serves its write on the event
loop (:mod:`racefree.http.pipeline`), so every writer -- or the whole loop --
would wait out those fsyncs: measured on SQLite payments, the median commit took
42 µs, but 1% took 3-10 ms, which raised the mean to 137 µs (issue 11).

So the writer turns automatic checkpoints off, and every
:data:`COMMITS_PER_CHECKPOINT` commits wakes a :class:`Checkpointer` thread,
which checkpoints ``PASSIVE`` on its own connection: it waits for no reader or
writer, and its copying and fsyncs block no one.

A checkpoint made beside a busy writer leaves the frames committed meanwhile, and
SQLite starts the WAL over only when a write begins with every frame copied: under
steady writes the file would grow for ever. So once the WAL holds
:data:`RESTART_FRAMES` frames, the thread checkpoints once more holding the
writer's lock -- only the few frames committed since its last pass -- and the
next write starts the WAL over.

A lock is not a queue: a writer that releases it and asks again at once gets it
back before a waiting thread wakes, so the pass under the lock could wait out
thousands of commits (a WAL of 11,292 frames instead of about 2,000, measured).
So the thread first closes a gate (:meth:`Checkpointer.wait_for_restart`): new
writers wait at it, and the lock goes to the thread after the writers already in
line. A brief request that finds the gate closed or the lock taken is served in a
worker thread (:class:`~racefree.core.exceptions.WriterBusy`), so the event loop
still waits for nothing. Closing the last connection to the file checkpoints
whatever is left (SQLite's own rule).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("racefree.db")

#: About SQLite's own 1000 pages: a payment commits 20-30.
COMMITS_PER_CHECKPOINT = 32
#: WAL frames (about 4 MB of 4 KiB pages) past which the WAL is made to start over.
RESTART_FRAMES = 1024
CLOSE_TIMEOUT_S = 5.0


class Checkpointer:
    """Checkpoints a SQLite file's WAL in a thread of its own, when its writer says so."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], writer_lock: threading.Lock
    ) -> None:
        self._connect = connect
        self._writer_lock = writer_lock
        self._commits = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._gate = threading.Event()  # closed while the thread waits for the writer's lock
        self._gate.set()

    @property
    def restarting(self) -> bool:
        """The thread waits for the writer's lock, or holds it: a new writer would wait."""
        return not self._gate.is_set()

    def wait_for_restart(self) -> None:
        """Before a writer asks for the lock: let the thread's pass under it go first."""
        if not self._gate.is_set():
            self._gate.wait()

    def committed(self) -> None:
        """The writer committed (call it under the writer's lock): a counter, and now and
        then a wake-up."""
        self._commits += 1
        if self._commits % COMMITS_PER_CHECKPOINT or self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="racefree-sqlite-checkpoint", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT_S)

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closed:
                    return
                try:
                    if _checkpoint(conn) >= RESTART_FRAMES:
                        self._restart(conn)
                except sqlite3.Error as exc:  # the next wake-up tries again
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def _restart(self, conn: sqlite3.Connection) -> None:
        self._gate.clear()
        try:
            with self._writer_lock:  # no commit in between: the next write starts the WAL over
                _checkpoint(conn)
        finally:
            self._gate.set()


def _checkpoint(conn: sqlite3.Connection) -> int:
    """A PASSIVE checkpoint; the frames the WAL holds."""
    frames: int = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()["log"]
    return frames
