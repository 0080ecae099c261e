"""No payment without its record: settling a SUBMITTED transaction against a slow executor.

Issue 16 finding 1 and issue 9 item 12. The stale-release sweep settles a
SUBMITTED transaction past its deadline by asking the executor whether the
submission landed. When the executor's ledger write is in flight -- waiting
on a lock another transaction holds -- the answer is "no" until it commits,
and a settlement that acts on that stale "no" leaves a paid transaction
FAILED. Whoever settles must hold the row (and what the executor's fence
holds) while it asks and decides; a lost settle CAS answers the row's final
state, never 409.
"""

from __future__ import annotations

import threading
from typing import Any

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.transactions.executors import Category, ExecutorError, LedgerExecutor
from racefree.transactions.machine import Transaction
from racefree.transactions.service import Outcome
from tests.faults.support import Background, hold_writer_lock, wait_until_waiting
from tests.transactions.conftest import balance, session_row, transfer

AMOUNT = 500
START_BALANCE = 1_000_000


class GatedLedger(LedgerExecutor):
    """The ledger executor behind a slow link: ``submit`` starts when ``gate`` opens, and
    its reply (after the ledger write committed) arrives when ``reply`` opens."""

    def __init__(self, db: Database, clock: ManualClock) -> None:
        super().__init__(db, clock)
        self.at_gate = threading.Event()
        self.gate = threading.Event()
        self.reply = threading.Event()

    def submit(self, txn: Transaction, prepared: Any) -> str:
        self.at_gate.set()
        assert self.gate.wait(30)
        try:
            return super().submit(txn, prepared)
        finally:
            assert self.reply.wait(30)


class LostReply(LedgerExecutor):
    """The ledger write commits, then its reply is lost past the deadline (a dropped link)."""

    def __init__(self, db: Database, clock: ManualClock, late_by_s: int) -> None:
        super().__init__(db, clock)
        self.manual = clock
        self.late_by_s = late_by_s

    def submit(self, txn: Transaction, prepared: Any) -> str:
        super().submit(txn, prepared)
        self.manual.advance(self.late_by_s)
        raise ExecutorError(Category.TRANSIENT, detail="connection lost after the commit")


def answered_status(outcome: Outcome) -> str:
    body = outcome.reply.body
    return str(body["status"] if outcome.reply.status < 400 else body["details"]["status"])


def assert_recorded(db: Database, agent: str, session: str, outcome: Outcome) -> str:
    """Paid iff CONFIRMED, reservation settled, and the client told the row's final status."""
    with db.read() as tx:
        row = tx.one(
            "SELECT t.id, t.status, (SELECT COUNT(*) FROM ledger_entries l"
            " WHERE l.transaction_id = t.id) AS paid FROM transactions t"
            " WHERE t.session_id = :s",
            {"s": session},
        )
    assert row is not None
    status, paid = row["status"], int(row["paid"])
    assert status in ("CONFIRMED", "FAILED")
    assert paid == (1 if status == "CONFIRMED" else 0), f"{status} with {paid} ledger entries"
    assert balance(db, agent) == START_BALANCE - AMOUNT * paid
    assert session_row(db, session) == {"spent": AMOUNT * paid, "reserved": 0, "tx_count": 1}
    assert answered_status(outcome) == status
    return str(status)


def _stall_then_sweep(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    service: Any,
    executor: GatedLedger,
    session: str,
    *,
    stall_on: str,
) -> Outcome:
    """Submit; stall the payment on a lock (PostgreSQL: the ``account`` row, which it takes
    after its fence, or the ``transaction`` row, which its fence takes; SQLite: the writer);
    let the deadline pass and the stale-release sweep queue behind it; release; the answer."""
    submitter = Background(lambda: service.submit(session, transfer(AMOUNT)))
    assert executor.at_gate.wait(30)  # SUBMITTED, about to pay
    with db.read() as tx:
        row = tx.one("SELECT id, agent_id FROM transactions WHERE session_id = :s", {"s": session})
    assert row is not None
    account = row["agent_id"] if stall_on == "account" else None
    with hold_writer_lock(db, account_of=account, row=None if account else row["id"]):
        executor.gate.set()
        wait_until_waiting(db, submitter)  # the payment queues on the lock / the writer
        clock.advance(settings.tier_instant_timeout_s + 1)
        sweeper = Background(service.release_stale)
        wait_until_waiting(db, sweeper, count=2)  # the settlement queues behind it
    sweeper.outcome()  # it settles once the payment committed (or was refused)
    executor.reply.set()  # only now does the payment's reply reach the execution loop
    outcome: Outcome = submitter.outcome()
    return outcome


def test_a_ledger_write_stalled_on_a_lock_past_the_deadline_is_never_paid_but_failed(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    make_service: Any,
    agent: str,
    session: str,
) -> None:
    """The executor fenced the row and waits on the account; the sweep runs meanwhile.

    Today: paid, FAILED by the sweep, and the client gets 409 INVALID_STATE_TRANSITION.
    """
    executor = GatedLedger(db, clock)
    service = make_service(executor)
    outcome = _stall_then_sweep(db, clock, settings, service, executor, session, stall_on="account")
    assert_recorded(db, agent, session, outcome)


def test_a_submission_stalled_before_its_fence_is_never_paid_after_a_failed_settlement(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    make_service: Any,
    agent: str,
    session: str,
) -> None:
    """Issue 9 item 12: the sweep asks, a slow submit commits, the sweep marks it FAILED."""
    executor = GatedLedger(db, clock)
    service = make_service(executor)
    outcome = _stall_then_sweep(
        db, clock, settings, service, executor, session, stall_on="transaction"
    )
    assert_recorded(db, agent, session, outcome)


def test_a_submit_whose_reply_was_lost_past_the_deadline_is_settled_by_asking(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    make_service: Any,
    agent: str,
    session: str,
) -> None:
    """The execution loop must not fail a SUBMITTED transaction without asking the executor."""
    service = make_service(LostReply(db, clock, settings.tier_instant_timeout_s + 1))
    outcome = service.submit(session, transfer(AMOUNT))
    assert assert_recorded(db, agent, session, outcome) == "CONFIRMED"
