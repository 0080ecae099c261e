"""core.db: one API over both engines; SQLite configured for one writer per process."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from racefree.core.db import (
    PSYCOPG_CACHED_BYTES,
    Database,
    DatabaseError,
    Dialect,
    native_sql,
    pg_sql,
)


@pytest.fixture(autouse=True)
def _probe_table(db: Database) -> None:
    """A test-only table: core is tested on no domain's table."""
    with db.write() as tx:
        tx.execute("CREATE TABLE probe (nonce VARCHAR(64) PRIMARY KEY, expires_at BIGINT NOT NULL)")


def test_writes_commit_and_reads_see_them(db: Database) -> None:
    with db.write() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('n1', 5)")
    with db.read() as tx:
        assert tx.all("SELECT nonce, expires_at FROM probe") == [{"nonce": "n1", "expires_at": 5}]
        assert tx.scalar("SELECT COUNT(*) FROM probe") == 1


def test_an_exception_rolls_the_whole_write_back(db: Database) -> None:
    with pytest.raises(ZeroDivisionError), db.write() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('n1', 5)")
        _ = 1 / 0
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM probe") == 0


def test_execute_returns_the_changed_row_count(db: Database) -> None:
    with db.write() as tx:
        for i in range(3):
            tx.execute(
                "INSERT INTO probe (nonce, expires_at) VALUES (:n, :e)", {"n": f"n{i}", "e": i}
            )
        assert tx.execute("DELETE FROM probe WHERE expires_at < :e", {"e": 2}) == 2


def test_write_is_not_reentrant_in_one_thread(db: Database) -> None:
    with pytest.raises(DatabaseError, match="not reentrant"), db.write(), db.write():
        pass


def test_concurrent_increments_are_never_lost(db: Database) -> None:
    with db.write() as tx:
        tx.execute("INSERT INTO lock_tokens (key, last_token) VALUES ('k', 0)")

    def bump() -> None:
        for _ in range(25):
            with db.write() as tx:
                tx.execute("UPDATE lock_tokens SET last_token = last_token + 1 WHERE key = 'k'")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as tx:
        assert tx.scalar("SELECT last_token FROM lock_tokens WHERE key = 'k'") == 200


@pytest.mark.parametrize("engine", ["sqlite"])
def test_sqlite_is_configured_for_one_writer_per_process(db: Database) -> None:
    with db.write() as tx:
        assert tx.scalar("PRAGMA journal_mode") == "wal"
        assert tx.scalar("PRAGMA synchronous") == 1  # NORMAL
        assert tx.scalar("PRAGMA foreign_keys") == 1
        assert tx.scalar("PRAGMA busy_timeout") == 5000
    with pytest.raises(Exception, match="readonly"), db.read() as tx:
        tx.execute("INSERT INTO probe (nonce, expires_at) VALUES ('x', 1)")


@pytest.mark.parametrize("engine", ["sqlite"])
def test_a_second_process_cannot_serve_the_same_sqlite_file(db: Database, db_url: str) -> None:
    db.claim_server()
    script = (
        f"from racefree.core.db import Database\nDatabase.from_url({db_url!r}).claim_server()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert "SQLite supports one serving process" in result.stderr
    assert "postgresql://" in result.stderr


def test_dialect_is_taken_from_the_url(db: Database, engine: str) -> None:
    assert db.dialect is Dialect(engine)


def test_unsupported_and_in_memory_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="unsupported database URL"):
        Database.from_url("mysql://root@localhost/db")
    with pytest.raises(DatabaseError, match="needs a SQLite file"):
        Database.from_url("sqlite:///:memory:")


def test_postgresql_unreachable_is_a_clear_error() -> None:
    with pytest.raises(
        DatabaseError, match=r"cannot connect to postgresql://u:\*\*\*@127.0.0.1:1/x"
    ):
        Database.from_url("postgresql://u:secret@127.0.0.1:1/x?connect_timeout=1")


def test_named_parameters_translate_for_psycopg_and_keep_casts() -> None:
    assert (
        pg_sql("SELECT :a::text, '5%' WHERE b = :b_2")
        == "SELECT %(a)s::text, '5%%' WHERE b = %(b_2)s"
    )


def test_a_long_statement_goes_with_native_placeholders() -> None:
    # psycopg would parse a statement this long again at every call: it is numbered once
    padding = " ".join(f":p{i}" for i in range(3))
    assert native_sql(f"SELECT :a::text, '5%', :a, {padding}") == (
        "SELECT $1::text, '5%', $1, $2 $3 $4",
        ("a", "p0", "p1", "p2"),
    )


def test_a_long_statement_runs_with_its_named_parameters(db: Database) -> None:
    long = (
        "SELECT CAST(:a AS INTEGER) + :b AS total, '5%' AS literal, CAST(:a AS INTEGER) AS again"
        f" /* {'x' * PSYCOPG_CACHED_BYTES} */"
    )
    for a, b in ((1, 2), (40, 2)):  # again: the same text, other values
        with db.read() as tx:
            [[row]] = tx.batch([(long, {"a": a, "b": b})])
        assert row == {"total": a + b, "literal": "5%", "again": a}
    with db.read() as tx:
        assert tx.one(long, {"a": 5, "b": 6}) == {"total": 11, "literal": "5%", "again": 5}
    with db.write() as tx:  # a statement of a write transaction, then its one-statement batch
        assert tx.scalar(long, {"a": 1, "b": 1}) == 2
    with db.write() as tx:
        [[row]] = tx.batch([(long, {"a": 3, "b": 4})], commit=True)
    assert row["total"] == 7
