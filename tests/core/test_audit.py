"""core.audit: append-only, enforced by the database itself on both engines."""

from __future__ import annotations

import psycopg
import pytest

from racefree.core import audit, context
from racefree.core.audit import Severity
from racefree.core.db import Database, Dialect


@pytest.fixture
def one_entry(db: Database) -> Database:
    token = context.request_id.set("req_abc")
    try:
        with db.write() as tx:
            audit.record(
                tx, "THING_HAPPENED", at=7, severity=Severity.WARNING, actor="op", details={"n": 1}
            )
    finally:
        context.request_id.reset(token)
    return db


def test_a_recorded_entry_reads_back_with_the_request_id(one_entry: Database) -> None:
    with one_entry.read() as tx:
        [entry] = audit.entries(tx)
    assert (entry.event_type, entry.severity, entry.actor, entry.details, entry.request_id) == (
        "THING_HAPPENED",
        Severity.WARNING,
        "op",
        {"n": 1},
        "req_abc",
    )


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"]
)
def test_update_and_delete_are_refused(one_entry: Database, statement: str) -> None:
    with pytest.raises(Exception, match="audit_log is append-only"), one_entry.write() as tx:
        tx.execute(statement)
    with one_entry.read() as tx:
        assert [e.actor for e in audit.entries(tx)] == ["op"]


@pytest.mark.parametrize("engine", ["postgresql"])  # SQLite has no TRUNCATE
def test_truncate_is_refused_on_postgresql(one_entry: Database) -> None:
    assert one_entry.dialect is Dialect.POSTGRESQL
    with pytest.raises(psycopg.Error, match="append-only"), one_entry.write() as tx:
        tx.execute("TRUNCATE audit_log")


def test_entries_page_by_id_and_filter(db: Database) -> None:
    with db.write() as tx:
        for i in range(5):
            audit.record(tx, "A" if i % 2 else "B", at=i, agent_id="x" if i < 2 else None)
    with db.read() as tx:
        first = audit.entries(tx, limit=2)
        rest = audit.entries(tx, after_id=first[-1].id)
        assert [e.at for e in first + rest] == [0, 1, 2, 3, 4]
        assert [e.at for e in audit.entries(tx, event_type="A")] == [1, 3]
        assert [e.at for e in audit.entries(tx, agent_id="x")] == [0, 1]
