"""Throwaway migrated databases for benchmarks (SQLite file, PostgreSQL database)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from racefree import migrations
from racefree.core.db import Database

POSTGRES_ADMIN_URL = os.environ.get(
    "RACEFREE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def sqlite_url(*, migrate: bool = True) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="racefree-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        if migrate:
            with Database.from_url(url) as db:
                migrations.upgrade(db)
        yield url


@contextlib.contextmanager
def postgres_url(*, migrate: bool = True) -> Iterator[str]:
    name = f"racefree_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            with Database.from_url(url) as db:
                migrations.upgrade(db)
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database_url(engine: str, *, migrate: bool = True) -> Iterator[str]:
    """A new database; ``migrate=False`` leaves it empty for a server that migrates it
    itself (``racefree serve`` does at start) -- another checkout's, whose migrations
    may not be this one's."""
    with (
        sqlite_url(migrate=migrate) if engine == "sqlite" else postgres_url(migrate=migrate) as url
    ):
        yield url
