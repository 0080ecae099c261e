"""The pytest plugin (entry point ``pytest11``): a real racefree server per test.

Fixtures:

``racefree_server``
    A :class:`~racefree.testing.server.Server` started for the test and stopped
    after it: ``base_url``, ``operator_token``, ``master_password``, ``api()``
    (a :class:`racefree.client.Client` with the operator token). On a database
    that was served before (a PostgreSQL URL of your own) a new operator token
    is created for each server.
``racefree_server_env``
    Extra ``RACEFREE_*`` settings for it; override the fixture to change them,
    e.g. ``{"RACEFREE_SESSION_EXPIRES_IN": "4"}``.
``racefree_database_url``
    The database it serves: ``--racefree-database-url`` or
    ``RACEFREE_TEST_DATABASE_URL`` (e.g. a PostgreSQL database of your own), else
    a fresh SQLite file in the test's ``tmp_path``.
``racefree_server_factory``
    ``start(env=..., database_url=...)`` for tests that need several servers
    (e.g. two processes on one PostgreSQL database); all are stopped after the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from racefree.testing.server import Server

DATABASE_URL_ENV = "RACEFREE_TEST_DATABASE_URL"

StartServer = Callable[..., "Server"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--racefree-database-url",
        default=None,
        help=f"database for the racefree_server fixture (default: ${DATABASE_URL_ENV}, "
        "else a SQLite file per test)",
    )


@pytest.fixture
def racefree_server_env() -> Mapping[str, str]:
    """Extra ``RACEFREE_*`` environment for :func:`racefree_server` (override me)."""
    return {}


@pytest.fixture
def racefree_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    given = request.config.getoption("--racefree-database-url") or os.environ.get(DATABASE_URL_ENV)
    return str(given) if given else f"sqlite:///{tmp_path / 'racefree.db'}"


@pytest.fixture
def racefree_server_factory(racefree_database_url: str, tmp_path: Path) -> Iterator[StartServer]:
    from racefree.testing.server import start_server

    started: list[Server] = []

    def start(env: Mapping[str, str] | None = None, database_url: str | None = None) -> Server:
        server = start_server(
            database_url or racefree_database_url, tmp_path, env=env, mint_operator_token=True
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def racefree_server(
    racefree_server_factory: StartServer, racefree_server_env: Mapping[str, str]
) -> Server:
    """A real racefree server for this test (see the module docstring)."""
    return racefree_server_factory(env=racefree_server_env)
