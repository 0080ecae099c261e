"""core.db on PostgreSQL: one connection per held block, batches in one round trip."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import make_url

from racefree.core.db import Database, DatabaseError
from racefree.core.exceptions import DatabaseUnavailable
from tests.proxy import proxied

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


@pytest.fixture(autouse=True)
def _probe_table(db: Database) -> None:
    """A test-only table: core is tested on no domain's table."""
    with db.write() as tx:
        tx.execute("CREATE TABLE probe (nonce VARCHAR(64) PRIMARY KEY, expires_at BIGINT NOT NULL)")


def _pid(db: Database) -> int:
    with db.read() as tx:
        return int(tx.scalar("SELECT pg_backend_pid()"))


def test_a_held_block_reads_writes_and_pins_on_one_connection(db: Database) -> None:
    with db.hold():
        pid = _pid(db)
        with db.write() as tx:
            assert tx.scalar("SELECT pg_backend_pid()") == pid
            with db.read() as inner:  # inside a write: another connection, committed data only
                assert inner.scalar("SELECT pg_backend_pid()") != pid
        with db.pinned() as conn:
            row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
            assert row is not None and row["pid"] == pid
    assert _pid(db) is not None  # and the connection went back to the pool


def test_a_held_connection_dropped_mid_request_is_replaced(db: Database, db_url: str) -> None:
    with Database.from_url(db_url) as harness, db.hold():
        pid = _pid(db)
        with harness.read() as tx:
            assert tx.scalar("SELECT pg_terminate_backend(:pid)", {"pid": pid}) is True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the backend is gone once its row is
            with harness.read() as tx:
                if not tx.scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = :p", {"p": pid}
                ):
                    break
            time.sleep(0.01)
        with db.write() as tx:
            tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('after', 1)")
        assert _pid(db) != pid
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM probe WHERE nonce = 'after'") == 1


def test_a_batch_with_its_commit_is_one_transaction(db: Database) -> None:
    with db.write() as tx:
        rows = tx.batch(
            [
                ("INSERT INTO probe (nonce, expires_at) VALUES ('a', 1)", None),
                ("INSERT INTO probe (nonce, expires_at) VALUES ('b', 2) RETURNING nonce", None),
                ("SELECT COUNT(*) AS n FROM probe", None),
            ],
            commit=True,
        )
        assert rows == [[], [{"nonce": "b"}], [{"n": 2}]]
        with pytest.raises(DatabaseError, match="committed"):
            tx.execute("SELECT 1")
    with pytest.raises(Exception, match="duplicate key"), db.write() as tx:
        tx.batch(
            [
                ("INSERT INTO probe (nonce, expires_at) VALUES ('c', 3)", None),
                ("INSERT INTO probe (nonce, expires_at) VALUES ('a', 1)", None),
            ],
            commit=True,
        )
    with db.read() as tx:
        assert tx.all("SELECT nonce FROM probe ORDER BY nonce") == [
            {"nonce": "a"},
            {"nonce": "b"},
        ]


def test_prefetched_reads_are_answered_once_from_one_round_trip(db: Database) -> None:
    with db.write() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('n', 7)")
    read = ("SELECT expires_at FROM probe WHERE nonce = :n", {"n": "n"})
    other = ("SELECT COUNT(*) AS c FROM probe", None)
    with db.hold():
        db.prefetch([read, other])
        with db.write() as tx:  # a change after the prefetch: the prefetched row predates it
            tx.execute("UPDATE probe SET expires_at = 8")
        with db.read() as tx:
            assert tx.one(*read) == {"expires_at": 7}  # read ahead, at the prefetch
            assert tx.one(*read) == {"expires_at": 8}  # once only: then asked again
            assert tx.one("SELECT expires_at FROM probe WHERE nonce = :n", {"n": "x"}) is None
    with db.read() as tx:  # outside the held block nothing is prefetched
        assert tx.one(*read) == {"expires_at": 8}


def test_prefetched_reads_tell_no_row_from_a_row_of_nulls_and_keep_their_own_columns(
    db: Database,
) -> None:
    with db.write() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('n', 7)")
    missing = ("SELECT nonce, expires_at FROM probe WHERE nonce = :gone", {"gone": "x"})
    nulls = ("SELECT NULL AS nonce, NULL AS expires_at", None)
    same_names = ("SELECT nonce, expires_at FROM probe WHERE nonce = :n", {"n": "n"})
    with db.hold():
        db.prefetch([missing, nulls, same_names])
        with db.write() as tx:
            tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('x', 1)")
            tx.execute("UPDATE probe SET expires_at = 8 WHERE nonce = 'n'")
        with db.read() as tx:
            assert tx.all(*missing) == []  # prefetched: found nothing, before the insert
            assert tx.all(*nulls) == [{"nonce": None, "expires_at": None}]
            assert tx.all(*same_names) == [{"nonce": "n", "expires_at": 7}]


def test_a_read_of_several_rows_leaves_every_read_to_be_made_on_its_own(db: Database) -> None:
    with db.write() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('a', 1), ('b', 2)")
    several = ("SELECT nonce FROM probe ORDER BY nonce", None)
    one = ("SELECT expires_at FROM probe WHERE nonce = :n", {"n": "a"})
    with db.hold():
        db.prefetch([one, several])
        with db.write() as tx:
            tx.execute("UPDATE probe SET expires_at = 5 WHERE nonce = 'a'")
        with db.read() as tx:  # nothing was kept: both read now, after the update
            assert tx.all(*one) == [{"expires_at": 5}]
            assert tx.all(*several) == [{"nonce": "a"}, {"nonce": "b"}]


def test_a_prefetch_reads_its_columns_again_after_the_schema_changed(db: Database) -> None:
    """The column layout of a joined read is kept per statement (psycopg builds the
    description anew at every call); a table that gained a column is read afresh."""
    with db.write() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('n', 7)")
    whole = ("SELECT * FROM probe WHERE nonce = :n", {"n": "n"})
    count = ("SELECT COUNT(*) AS c FROM probe", None)

    def prefetched() -> list[dict[str, object]]:
        with db.hold():
            db.prefetch([whole, count])
            with db.read() as tx:
                rows = tx.all(*whole)
                assert tx.all(*count) == [{"c": 1}]
                return rows

    assert prefetched() == [{"nonce": "n", "expires_at": 7}]
    with db.write() as tx:
        tx.execute("ALTER TABLE probe ADD COLUMN note TEXT DEFAULT 'added'")
    assert prefetched() == [{"nonce": "n", "expires_at": 7, "note": "added"}]


def test_a_released_block_holds_no_connection(db: Database) -> None:
    with db.hold():
        pid = _pid(db)
        assert _pid(db) == pid
        db.release()  # e.g. before an executor's slow call
        with db.pinned() as conn, db.read() as tx:  # two connections at once: none held
            row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
            assert row is not None and row["pid"] != tx.scalar("SELECT pg_backend_pid()")
        # nested in the released block: still not holding
        with db.hold(), db.pinned() as conn, db.read() as tx:
            row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
            assert row is not None and row["pid"] != tx.scalar("SELECT pg_backend_pid()")


def test_a_cut_off_server_is_unavailable_at_once_and_back_when_it_returns(db_url: str) -> None:
    url = make_url(db_url)
    with proxied(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        with Database.from_url(through) as db:
            assert _pid(db)
            proxy.cut()
            for _ in range(3):  # each read, the first included, fails fast: no 30 s queue
                asked = time.monotonic()
                with pytest.raises(DatabaseUnavailable):
                    _pid(db)
                assert time.monotonic() - asked < 5
            proxy.restore()
            deadline = time.monotonic() + 15
            while True:  # the pool reconnects by itself; reads wait for nothing meanwhile
                try:
                    assert _pid(db)
                    break
                except DatabaseUnavailable:
                    assert time.monotonic() < deadline, "the pool never reconnected"
                    time.sleep(0.1)
