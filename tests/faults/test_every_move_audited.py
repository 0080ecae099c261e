"""One audit row per status move (issue 16, 5).

Queueing (``PENDING -> QUEUED``), worker claims (``QUEUED -> EXECUTING``),
run-now claims (``PENDING -> EXECUTING``) and the kill switch's cancellations
(set-based) each write one
audit row for the transaction they move, so the audit log -- and the event
stream built on it -- shows every status a transaction entered.
"""

from __future__ import annotations

import json
from collections import Counter

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.killswitch.activation import activate_now
from racefree.settings import Settings
from racefree.transactions.service import Transactions
from tests.transactions.conftest import transfer


def entered(db: Database, txn_id: str) -> Counter[str]:
    """How many audit rows record ``txn_id`` entering each status."""
    with db.read() as tx:
        rows = tx.all(
            "SELECT event_type, details FROM audit_log WHERE transaction_id = :id", {"id": txn_id}
        )
    return Counter(
        "CREATED" if r["event_type"] == "TRANSACTION_CREATED" else json.loads(r["details"])["to"]
        for r in rows
    )


def _id(service: Transactions, session: str, amount: int) -> str:
    return str(service.submit(session, transfer(amount)).reply.body["transaction_id"])


def test_a_run_now_transaction_has_one_audit_row_per_status_it_entered(
    db: Database, service: Transactions, session: str
) -> None:
    txn_id = _id(service, session, 500)
    assert entered(db, txn_id) == Counter(CREATED=1, EXECUTING=1, SUBMITTED=1, CONFIRMED=1)


def test_a_worker_claim_of_a_delayed_transaction_is_audited(
    db: Database, service: Transactions, clock: ManualClock, settings: Settings, session: str
) -> None:
    txn_id = _id(service, session, 20_000)
    clock.advance(settings.tier_delay_s)
    assert service.run_due() == 1
    assert entered(db, txn_id) == Counter(
        CREATED=1, QUEUED=1, EXECUTING=1, SUBMITTED=1, CONFIRMED=1
    )


def test_the_kill_switch_audits_each_transaction_it_cancels(
    db: Database, service: Transactions, clock: ManualClock, session: str
) -> None:
    queued = [_id(service, session, amount) for amount in (20_000, 30_000, 60_000)]
    activation = activate_now(db, "audit", now=clock.now(), actor="test")
    assert activation.transactions_cancelled == 3
    for txn_id in queued:
        assert entered(db, txn_id) == Counter(CREATED=1, QUEUED=1, CANCELLED=1)
