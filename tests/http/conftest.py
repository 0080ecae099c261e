"""Fixtures shared by the HTTP tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from racefree.testing import Server, start_server


@pytest.fixture
def renewable_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real server on which a fresh session can be renewed at once."""
    srv = start_server(db_url, tmp_path, env={"RACEFREE_SESSION_RENEWAL_MIN_ELAPSED": "0"})
    yield srv
    srv.stop()
