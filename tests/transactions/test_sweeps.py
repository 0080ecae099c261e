"""The sweeps the background workers run: delayed execution, expiry, stale release."""

from __future__ import annotations

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.transactions.machine import TRANSACTIONS, Status
from racefree.transactions.service import Transactions
from tests import factory
from tests.factory import OWNER_PUBLIC
from tests.transactions.conftest import balance, ledger_total, session_row, transfer


def _queue(service: Transactions, session: str, amount: int) -> str:
    return str(service.submit(session, transfer(amount)).reply.body["transaction_id"])


def test_delayed_transactions_run_once_their_time_has_come(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    settings: Settings,
    agent: str,
    session: str,
) -> None:
    txn_id = _queue(service, session, 20_000)
    assert service.run_due() == 0
    clock.advance(settings.tier_delay_s)
    assert service.run_due() == 1
    assert service.get(txn_id).status is Status.CONFIRMED
    assert service.run_due() == 0
    assert ledger_total(db, agent) == 20_000


def test_unapproved_transactions_expire_and_release_their_reservation(
    db: Database, service: Transactions, clock: ManualClock, settings: Settings, session: str
) -> None:
    txn_id = _queue(service, session, 60_000)
    assert service.expire_due() == 0
    clock.advance(settings.tier_approval_ttl_s)
    assert service.expire_due() == 1
    txn = service.get(txn_id)
    assert (txn.status, txn.error) == (Status.EXPIRED, "APPROVAL_EXPIRED")
    assert session_row(db, session) == {"spent": 0, "reserved": 0, "tx_count": 1}


def _strand(
    db: Database, clock: ManualClock, service: Transactions, session: str, *, submitted: bool
) -> str:
    """A transaction whose process died while it was EXECUTING (or SUBMITTED)."""
    txn_id = _queue(service, session, 20_000)
    with db.write() as tx:
        TRANSACTIONS.transition(
            tx,
            "claim",
            txn_id,
            now=clock.now(),
            values={"deadline_at_ms": clock.now_ms() + 300_000},
        )
        if submitted:
            TRANSACTIONS.transition(tx, "submit", txn_id, now=clock.now())
    return txn_id


def test_a_stranded_executing_transaction_fails_after_its_deadline(
    db: Database, service: Transactions, clock: ManualClock, agent: str, session: str
) -> None:
    txn_id = _strand(db, clock, service, session, submitted=False)
    assert service.release_stale() == 0
    clock.advance(300)
    assert service.release_stale() == 1
    txn = service.get(txn_id)
    assert (txn.status, txn.error) == (Status.FAILED, "EXECUTION_TIMEOUT")
    assert session_row(db, session)["reserved"] == 0
    assert balance(db, agent) == 1_000_000


def test_a_stranded_submission_that_landed_is_confirmed(
    db: Database, service: Transactions, clock: ManualClock, agent: str, session: str
) -> None:
    txn_id = _strand(db, clock, service, session, submitted=True)
    service.executor.submit(service.get(txn_id), None)  # landed, then the process died
    clock.advance(300)
    assert service.release_stale() == 1
    assert service.get(txn_id).status is Status.CONFIRMED
    assert session_row(db, session) == {"spent": 20_000, "reserved": 0, "tx_count": 1}
    assert ledger_total(db, agent) == 20_000


def test_a_stranded_submission_that_never_landed_fails(
    db: Database, service: Transactions, clock: ManualClock, session: str
) -> None:
    txn_id = _strand(db, clock, service, session, submitted=True)
    clock.advance(300)
    assert service.release_stale() == 1
    txn = service.get(txn_id)
    assert (txn.status, txn.error) == (Status.FAILED, "NOT_CONFIRMED")
    assert session_row(db, session)["reserved"] == 0


def _set_agent_status(db: Database, agent_id: str, status: str) -> None:
    with db.write() as tx:
        tx.execute("UPDATE agents SET status = :s WHERE id = :id", {"s": status, "id": agent_id})


def test_a_suspended_agents_delayed_transaction_waits_until_it_is_active_again(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    settings: Settings,
    agent: str,
    session: str,
) -> None:
    txn_id = _queue(service, session, 20_000)
    _set_agent_status(db, agent, "SUSPENDED")
    clock.advance(settings.tier_delay_s)
    assert service.run_due() == 0
    assert service.get(txn_id).status is Status.QUEUED
    _set_agent_status(db, agent, "ACTIVE")
    assert service.run_due() == 1
    assert service.get(txn_id).status is Status.CONFIRMED


def test_suspended_agents_due_work_does_not_crowd_out_other_agents(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    settings: Settings,
    agent: str,
    session: str,
) -> None:
    waiting = _queue(service, session, 20_000)  # older, and its agent gets suspended
    other_agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    other = _queue(service, factory.session(db, other_agent, now=clock.now()), 20_000)
    _set_agent_status(db, agent, "SUSPENDED")
    clock.advance(settings.tier_delay_s)
    assert service.run_due(limit=1) == 1
    assert service.get(other).status is Status.CONFIRMED
    assert service.get(waiting).status is Status.QUEUED
