"""Alembic migrations, shipped inside the package: ``racefree db upgrade``."""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from racefree.core.db import Database


def alembic_config(sqlalchemy_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "racefree:migrations")
    config.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run from several processes at once."""
    command.upgrade(alembic_config(db.sqlalchemy_url()), revision)


def current_revision(db: Database) -> str | None:
    engine = create_engine(db.sqlalchemy_url(), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


@functools.cache
def head_revision() -> str | None:
    """The newest revision the package ships (read once: the scripts do not change at run time)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def probe_revision(db: Database, timeout_s: float) -> str | None:
    """The schema's revision read on a fresh connection within ``timeout_s`` (readiness).

    Raises :class:`~racefree.core.db.DatabaseError` when the database does not answer
    or has no schema yet.
    """
    revision: str | None = db.probe("SELECT version_num FROM alembic_version", timeout_s)
    return revision
