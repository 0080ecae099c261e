"""Fixtures: every behaviour runs on SQLite and PostgreSQL (docs/testing.md).

Each test gets a fresh database cloned from a template that the migrations
built once per run (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL). PostgreSQL comes from ``RACEFREE_TEST_POSTGRES_URL``; when it is
unreachable its cases skip, unless ``RACEFREE_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from racefree import migrations, operators
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.http import create_app
from racefree.runtime import Runtime
from racefree.settings import Settings
from racefree.testing import Server, start_server

ENGINES = ("sqlite", "postgresql")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_POOL_SIZE = 40


def _admin_url() -> str:
    return os.environ.get("RACEFREE_TEST_POSTGRES_URL", DEFAULT_PG)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "racefree.db"
    with Database.from_url(f"sqlite:///{path}") as db:
        migrations.upgrade(db)
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    try:
        _admin("SELECT 1")
    except psycopg.Error as exc:
        reason = f"PostgreSQL unreachable at {_admin_url()}: {exc}"
        if os.environ.get("RACEFREE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"RACEFREE_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    prefix = f"racefree_test_{uuid.uuid4().hex[:10]}"
    template = f"{prefix}_tpl"
    _admin(f'CREATE DATABASE "{template}"')
    with Database.from_url(_with_database(_admin_url(), template)) as db:
        migrations.upgrade(db)
    yield template
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    engine_name: str = request.param
    return engine_name


@pytest.fixture
def db_url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if engine == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "racefree.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"{template_name[:-4]}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    yield _with_database(_admin_url(), name)
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, db_pool_size=TEST_POOL_SIZE)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def runtime(settings: Settings, clock: ManualClock) -> Iterator[Runtime]:
    rt = Runtime.open(settings, clock)
    yield rt
    rt.close()


@pytest.fixture
def db(runtime: Runtime) -> Database:
    return runtime.db


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def operator_token(db: Database, clock: ManualClock) -> str:
    with db.write() as tx:
        return operators.create_token(tx, label="test", now=clock.now())


@pytest.fixture
def operator_headers(operator_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token}"}


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real server process on this test's database."""
    srv = start_server(db_url, tmp_path)
    yield srv
    srv.stop()
