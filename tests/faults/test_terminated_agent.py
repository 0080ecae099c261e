"""A terminated agent's queued work ends CANCELLED, its reservation released (issue 16, 2).

The due-work query skips agents that are not ACTIVE, so a DELAY transaction
of an agent terminated while it waited stayed QUEUED forever with its amount
reserved. Termination cancels the agent's queued work in its own transaction.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.transactions.service import Transactions
from tests.http.test_transactions import make_agent, make_session, transfer


def test_terminating_an_agent_cancels_its_queued_transactions_and_releases_them(
    client: TestClient,
    operator_headers: dict[str, str],
    db: Database,
    clock: ManualClock,
    settings: Settings,
) -> None:
    agent = make_agent(client, operator_headers)
    session = make_session(client, operator_headers, agent)
    queued = []
    for amount in (20_000, 60_000):  # DELAY, APPROVAL
        response = client.post("/v1/transactions", json=transfer(amount), headers=session)
        assert response.status_code == 202, response.text
        queued.append(response.json()["transaction_id"])
    terminated = client.post(f"/v1/agents/{agent}/terminate", headers=operator_headers)
    assert terminated.status_code == 200, terminated.text
    for txn_id in queued:
        txn = client.get(f"/v1/transactions/{txn_id}", headers=operator_headers).json()
        assert txn["status"] == "CANCELLED", txn
    with db.read() as tx:
        reserved = tx.scalar("SELECT reserved FROM sessions WHERE agent_id = :a", {"a": agent})
        trail = tx.all(
            "SELECT transaction_id, details FROM audit_log"
            " WHERE event_type = 'TRANSACTION_CANCELLED' ORDER BY id"
        )
    assert int(reserved) == 0
    assert sorted(r["transaction_id"] for r in trail) == sorted(queued)
    assert all(json.loads(r["details"])["to"] == "CANCELLED" for r in trail)
    clock.advance(settings.tier_delay_s)
    assert Transactions(db, clock, settings).run_due() == 0  # nothing left to strand
