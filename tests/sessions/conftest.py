"""Fixtures for session tests: an ACTIVE agent made by the agents domain (seeds: tests/factory)."""

from __future__ import annotations

import pytest

from racefree import agents
from racefree.core.clock import ManualClock
from racefree.core.db import Database


@pytest.fixture
def agent_id(db: Database, clock: ManualClock) -> str:
    with db.write() as tx:
        return agents.create(tx, name="agent", now=clock.now()).id
