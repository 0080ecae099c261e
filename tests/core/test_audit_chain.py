"""The audit log cannot be overwritten and is tamper-evident (issue 9, item 10).

* SQLite's ``INSERT OR REPLACE`` (whose implicit delete fires no DELETE
  trigger) and PostgreSQL's ``INSERT ... ON CONFLICT DO UPDATE`` are refused.
* Each row carries a hash chained to the previous row's, computed in the
  same transaction; ``racefree audit verify`` reports the first broken link.
  Concurrent appenders on PostgreSQL still build one unbroken chain.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.testing import race, tally


def _append(db: Database, n: int, *, now: int, actor: str = "test") -> None:
    for i in range(n):
        with db.write() as tx:
            audit.record(tx, "TEST_EVENT", at=now, actor=actor, details={"i": i, "text": "é"})


def _verify(db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "racefree", "audit", "verify", "--database-url", db_url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ids(db: Database) -> list[int]:
    with db.read() as tx:
        return [r["id"] for r in tx.all("SELECT id FROM audit_log ORDER BY id")]


@pytest.fixture
def unguarded(db: Database) -> Iterator[None]:
    """What someone with direct write access to the database can do: switch the triggers off."""
    with db.write() as tx:
        if tx.is_sqlite:
            for name in ("audit_log_no_update", "audit_log_no_delete"):
                tx.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            tx.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    yield


def test_insert_or_replace_cannot_overwrite_a_row(db: Database, clock: ManualClock) -> None:
    _append(db, 2, now=clock.now())
    first = _ids(db)[0]
    with db.read() as tx:
        before = tx.one("SELECT * FROM audit_log WHERE id = :id", {"id": first})
        columns = ", ".join(before or {})
    values = ", ".join(f":{c}" for c in before or {})
    forged = {**(before or {}), "actor": "mallory"}
    with db.write() as tx:
        statement = (
            f"INSERT OR REPLACE INTO audit_log ({columns}) VALUES ({values})"
            if tx.is_sqlite
            else f"INSERT INTO audit_log ({columns}) VALUES ({values})"
            " ON CONFLICT (id) DO UPDATE SET actor = EXCLUDED.actor"
        )
    with pytest.raises(Exception, match="append-only"), db.write() as tx:
        tx.execute(statement, forged)
    with db.read() as tx:
        assert tx.one("SELECT * FROM audit_log WHERE id = :id", {"id": first}) == before


def test_an_untouched_log_verifies(db: Database, db_url: str, clock: ManualClock) -> None:
    _append(db, 5, now=clock.now())
    result = _verify(db_url)
    assert result.returncode == 0, result.stderr
    total = len(_ids(db))
    assert f"{total} entries" in result.stdout and "intact" in result.stdout


def test_a_rolled_back_append_leaves_no_hole_in_the_chain(
    db: Database, db_url: str, clock: ManualClock
) -> None:
    _append(db, 2, now=clock.now())
    with pytest.raises(RuntimeError), db.write() as tx:
        audit.record(tx, "TEST_EVENT", at=clock.now(), actor="rolled back")
        raise RuntimeError("the change failed after its audit row")
    _append(db, 2, now=clock.now())
    ids = _ids(db)
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # contiguous: the chain has no hole
    assert _verify(db_url).returncode == 0


@pytest.mark.usefixtures("unguarded")
def test_a_changed_row_is_reported_as_the_first_broken_link(
    db: Database, db_url: str, clock: ManualClock
) -> None:
    _append(db, 6, now=clock.now())
    ids = _ids(db)
    victim = ids[3]
    with db.write() as tx:
        tx.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = :id", {"id": victim})
    result = _verify(db_url)
    assert result.returncode == 1
    assert f"broken at entry {victim}" in result.stdout + result.stderr


@pytest.mark.usefixtures("unguarded")
def test_a_deleted_row_is_reported(db: Database, db_url: str, clock: ManualClock) -> None:
    _append(db, 6, now=clock.now())
    ids = _ids(db)
    with db.write() as tx:
        tx.execute("DELETE FROM audit_log WHERE id = :id", {"id": ids[2]})
    result = _verify(db_url)
    assert result.returncode == 1
    assert f"broken at entry {ids[3]}" in result.stdout + result.stderr


@pytest.mark.usefixtures("unguarded")
def test_a_deleted_tail_is_reported_against_the_chain_head(
    db: Database, db_url: str, clock: ManualClock
) -> None:
    _append(db, 4, now=clock.now())
    last = _ids(db)[-1]
    with db.write() as tx:
        tx.execute("DELETE FROM audit_log WHERE id = :id", {"id": last})
    result = _verify(db_url)
    assert result.returncode == 1
    assert "head" in result.stdout + result.stderr


def test_concurrent_appenders_build_one_unbroken_chain(
    db: Database, db_url: str, clock: ManualClock
) -> None:
    before = len(_ids(db))

    def append(i: int) -> None:
        _append(db, 5, now=clock.now(), actor=f"writer-{i}")

    assert tally(race(16, append)) == {"won": 16}
    ids = _ids(db)
    assert len(ids) == before + 80
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    result = _verify(db_url)
    assert result.returncode == 0, result.stdout + result.stderr


def _append_many(db: Database, n: int, *, now: int, actor: str) -> None:
    """One transaction writing ``n`` entries, the way cancel-open audits each transaction."""
    with db.write() as tx:
        rows = [
            {"agent_id": None, "session_id": None, "transaction_id": f"t-{i}"} for i in range(n)
        ]
        assert audit.record_each(tx, "TEST_MANY", rows, at=now, actor=actor) == n
        audit.record(tx, "TEST_EVENT", at=now, actor=actor)


def test_single_and_many_entry_appenders_racing_build_one_unbroken_chain(
    db: Database, db_url: str, clock: ManualClock
) -> None:
    """Writers of one entry (one statement on PostgreSQL) race writers of 451 entries
    (head locked once, multi-row INSERTs): one chain, ids contiguous, every entry an
    event with its transaction's txid."""
    before = len(_ids(db))

    def append(i: int) -> None:
        if i % 4 == 0:
            _append_many(db, 450, now=clock.now(), actor=f"many-{i}")
        else:
            _append(db, 3, now=clock.now(), actor=f"few-{i}")

    assert tally(race(12, append)) == {"won": 12}
    ids = _ids(db)
    assert len(ids) == before + 3 * 451 + 9 * 3
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    with db.read() as tx:
        per_writer = tx.all(
            "SELECT actor, COUNT(DISTINCT txid) AS txids, MIN(id) AS first, MAX(id) AS last,"
            " COUNT(*) AS n FROM audit_log WHERE actor LIKE 'many-%' GROUP BY actor"
        )
    assert len(per_writer) == 3
    for row in per_writer:
        assert row["n"] == 451 and row["txids"] == 1  # one transaction: one txid
        assert row["last"] - row["first"] == 450  # appended together, nothing in between
    result = _verify(db_url)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_migration_chains_the_entries_written_before_it(
    db: Database, db_url: str, clock: ManualClock
) -> None:
    from alembic import command

    from racefree import migrations

    command.downgrade(migrations.alembic_config(db.sqlalchemy_url()), "0012")  # before 0008
    with db.write() as tx:  # entries as the code before the chain wrote them
        for i in range(3):
            tx.execute(
                "INSERT INTO audit_log (at, event_type, severity, actor, details)"
                " VALUES (:at, 'OLD_EVENT', 'info', 'past', :details)",
                {"at": clock.now(), "details": f'{{"i":{i}}}'},
            )
    migrations.upgrade(db)
    _append(db, 2, now=clock.now())
    result = _verify(db_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_ids(db))} entries" in result.stdout
    with pytest.raises(Exception, match="append-only"), db.write() as tx:
        tx.execute("UPDATE audit_log SET actor = 'mallory'")  # the trigger is back
