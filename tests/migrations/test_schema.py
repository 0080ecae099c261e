"""Migrations build exactly the schema that core.schema declares, on both engines."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from racefree import migrations
from racefree.core.db import Database
from racefree.schema import metadata


# PostgreSQL reflects the NOT VALID kept-sum CHECKs (migration 0008) with a dialect option
# that alembic's comparison passes back to SQLAlchemy, which warns; the comparison is unaffected
@pytest.mark.filterwarnings("ignore:Can't validate argument 'dialect_options'")
def test_migrated_schema_has_no_drift_from_the_metadata(db: Database) -> None:
    engine = create_engine(db.sqlalchemy_url(), poolclass=NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    engine.dispose()
    assert diff == []


def test_database_is_at_head_and_upgrade_is_idempotent(db: Database) -> None:
    assert migrations.current_revision(db) == migrations.head_revision()
    migrations.upgrade(db)
    assert migrations.current_revision(db) == migrations.head_revision()


def test_the_kill_switch_starts_normal(db: Database) -> None:
    with db.read() as tx:
        assert tx.one("SELECT scope, state, version FROM kill_switch") == {
            "scope": "global",
            "state": "NORMAL",
            "version": 0,
        }
