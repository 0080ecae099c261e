"""Fixtures for session tests: an ACTIVE agent and a session policy on the test clock."""

from __future__ import annotations

import pytest

from racefree import agents, sessions
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.sessions import IssuedToken, Policy

POLICY = Policy(expires_in=100, max_renewals=3, absolute_lifetime=1000, min_elapsed=0.5)


@pytest.fixture
def agent_id(db: Database, clock: ManualClock) -> str:
    with db.write() as tx:
        return agents.create(tx, name="agent", now=clock.now()).id


def open_session(
    db: Database, clock: ManualClock, agent_id: str, policy: Policy = POLICY, **kwargs: object
) -> IssuedToken:
    with db.write() as tx:
        return sessions.issue(tx, agent_id, now=clock.now(), policy=policy, **kwargs)  # type: ignore[arg-type]
