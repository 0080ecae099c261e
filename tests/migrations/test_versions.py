"""Row versions (migration 0010): every UPDATE of a versioned row bumps it, on both engines."""

from __future__ import annotations

import pytest

from racefree import agents
from racefree.core.db import Database


@pytest.mark.parametrize("updates", [1, 3])
def test_every_update_bumps_the_version_once(db: Database, updates: int) -> None:
    with db.write() as tx:
        agent = agents.create(tx, name="v", now=1, actor="test")
    for i in range(updates):
        with db.write() as tx:
            tx.execute("UPDATE agents SET name = :n WHERE id = :id", {"n": f"v{i}", "id": agent.id})
    with db.write() as tx:  # an UPDATE that matches nothing changes nothing
        tx.execute("UPDATE agents SET name = 'x' WHERE id = 'missing'")
    with db.read() as tx:
        assert tx.scalar("SELECT version FROM agents WHERE id = :id", {"id": agent.id}) == updates
