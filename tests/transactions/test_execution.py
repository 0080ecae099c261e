"""The execution loop: CAS claims, the SUBMITTED claim before the irreversible step, retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from racefree import killswitch
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError, spec_of
from racefree.settings import Settings
from racefree.testing import race, tally
from racefree.transactions.errors import TransactionCode
from racefree.transactions.executors import Category, ExecutorError, LedgerExecutor
from racefree.transactions.machine import TRANSACTIONS, Reason, Status, Transaction
from racefree.transactions.service import Transactions
from tests import factory
from tests.factory import OWNER_PUBLIC
from tests.transactions.conftest import balance, ledger_total, session_row, transfer

Step = ExecutorError | Callable[[], None] | None


class Scripted(LedgerExecutor):
    """The ledger, with scripted failures/actions per step (consumed in order) and a call log."""

    def __init__(self, db: Database, clock: ManualClock, **script: list[Step]) -> None:
        super().__init__(db, clock)
        self.script = script
        self.calls: list[str] = []

    def _next(self, step: str) -> None:
        self.calls.append(step)
        queue = self.script.get(step, [])
        action = queue.pop(0) if queue else None
        if isinstance(action, ExecutorError):
            raise action
        if action is not None:
            action()

    def prepare(self, txn: Transaction) -> int:
        self._next("prepare")
        return super().prepare(txn)

    def submit(self, txn: Transaction, prepared: Any) -> str:
        self._next("submit")
        return super().submit(txn, prepared)

    def confirm(self, txn: Transaction, reference: str | None) -> bool:
        self._next("confirm")
        return super().confirm(txn, reference)


def transient() -> ExecutorError:
    return ExecutorError(Category.TRANSIENT, detail="try later")


def stale() -> ExecutorError:
    return ExecutorError(Category.STALE, detail="quote expired")


@pytest.fixture
def scripted(
    db: Database, clock: ManualClock, make_service: Callable[..., Transactions]
) -> Callable[..., tuple[Transactions, Scripted]]:
    def make(**script: list[Step]) -> tuple[Transactions, Scripted]:
        executor = Scripted(db, clock, **script)
        return make_service(executor), executor

    return make


def _final(service: Transactions, session: str, amount: int = 100) -> Transaction:
    outcome = service.submit(session, transfer(amount))
    assert outcome.transaction_id is not None
    return service.get(outcome.transaction_id)


def test_fifty_concurrent_debits_against_a_balance_for_ten_confirm_exactly_ten(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    agent_id = factory.agent(db, owner=OWNER_PUBLIC, balance=1000)
    session_id = factory.session(db, agent_id, now=clock.now())

    def debit(i: int) -> str:
        reply = service.submit(session_id, transfer(100)).reply
        if reply.status >= 400:
            raise RacefreeError(spec_of(reply.body["code"]).code)
        return str(reply.body["status"])

    outcomes = race(50, debit)

    assert tally(outcomes) == {"won": 10, "INSUFFICIENT_BALANCE": 40}
    assert {o.value for o in outcomes if o.won} == {"CONFIRMED"}
    assert balance(db, agent_id) == 0
    assert ledger_total(db, agent_id) == 1000
    assert session_row(db, session_id) == {"spent": 1000, "reserved": 0, "tx_count": 50}
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM ledger_entries") == 10
        failed = tx.all("SELECT error FROM transactions WHERE status = 'FAILED'")
    assert [r["error"] for r in failed] == ["INSUFFICIENT_BALANCE"] * 40


def test_a_permanent_failure_answers_with_its_catalog_error_and_releases_the_reservation(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    agent_id = factory.agent(db, owner=OWNER_PUBLIC, balance=50)
    session_id = factory.session(db, agent_id, now=clock.now())
    reply = service.submit(session_id, transfer(100)).reply
    assert reply.status == 400
    assert reply.body["code"] == "INSUFFICIENT_BALANCE"
    txn = service.get(reply.body["details"]["transaction_id"])
    assert (txn.status, txn.error) == (Status.FAILED, "INSUFFICIENT_BALANCE")
    assert session_row(db, session_id) == {"spent": 0, "reserved": 0, "tx_count": 1}
    assert balance(db, agent_id) == 50


def test_transient_errors_are_retried_with_growing_jittered_backoff(
    scripted: Callable[..., tuple[Transactions, Scripted]],
    session: str,
    sleeps: list[float],
    settings: Settings,
) -> None:
    service, executor = scripted(prepare=[transient(), transient(), transient()])
    txn = _final(service, session)
    assert txn.status is Status.CONFIRMED
    assert executor.calls == ["prepare"] * 4 + ["submit", "confirm"]
    base = settings.executor_retry_base_s
    assert len(sleeps) == 3
    for retry, delay in enumerate(sleeps):
        assert base * 2**retry * 0.5 <= delay < base * 2**retry * 1.5


def test_a_fourth_transient_error_fails_the_transaction(
    db: Database, scripted: Callable[..., tuple[Transactions, Scripted]], session: str
) -> None:
    service, executor = scripted(prepare=[transient()] * 4)
    txn = _final(service, session)
    assert (txn.status, txn.error) == (Status.FAILED, "EXECUTOR_UNAVAILABLE")
    assert "submit" not in executor.calls
    assert session_row(db, session)["reserved"] == 0


def test_a_stale_preparation_is_prepared_again_once(
    scripted: Callable[..., tuple[Transactions, Scripted]], session: str
) -> None:
    service, executor = scripted(prepare=[stale()])
    assert _final(service, session).status is Status.CONFIRMED
    assert executor.calls == ["prepare", "prepare", "submit", "confirm"]


def test_a_second_stale_preparation_fails(
    scripted: Callable[..., tuple[Transactions, Scripted]], session: str
) -> None:
    service, executor = scripted(prepare=[stale(), stale()])
    txn = _final(service, session)
    assert (txn.status, txn.error) == (Status.FAILED, "EXECUTOR_UNAVAILABLE")
    assert executor.calls == ["prepare", "prepare"]


def test_a_stale_submission_is_prepared_again_and_resubmitted_once(
    db: Database,
    scripted: Callable[..., tuple[Transactions, Scripted]],
    agent: str,
    session: str,
) -> None:
    service, executor = scripted(submit=[stale()])
    assert _final(service, session).status is Status.CONFIRMED
    assert executor.calls == ["prepare", "submit", "prepare", "submit", "confirm"]
    assert ledger_total(db, agent) == 100


def test_a_permanent_submit_error_fails_from_submitted(
    db: Database, scripted: Callable[..., tuple[Transactions, Scripted]], session: str
) -> None:
    refused = ExecutorError(Category.PERMANENT, TransactionCode.INSUFFICIENT_BALANCE, "refused")
    service, _ = scripted(submit=[refused])
    txn = _final(service, session)
    assert (txn.status, txn.error) == (Status.FAILED, "INSUFFICIENT_BALANCE")
    assert txn.submitted_at is not None
    assert session_row(db, session)["reserved"] == 0


def test_an_executor_bug_is_treated_as_transient(
    scripted: Callable[..., tuple[Transactions, Scripted]], session: str
) -> None:
    def crash() -> None:
        raise ConnectionError("socket closed")

    service, executor = scripted(confirm=[crash])
    assert _final(service, session).status is Status.CONFIRMED
    assert executor.calls == ["prepare", "submit", "confirm", "confirm"]


def test_a_retried_ledger_submit_pays_once_and_an_ended_transaction_is_never_paid(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    agent: str,
    session: str,
) -> None:
    txn_id = service.submit(session, transfer(20_000)).reply.body["transaction_id"]
    now = clock.now()
    with db.write() as tx:
        TRANSACTIONS.transition(tx, "claim", txn_id, now=now)
        submitted = Transaction.from_row(TRANSACTIONS.transition(tx, "submit", txn_id, now=now).row)
    ledger = LedgerExecutor(db, clock)

    assert ledger.submit(submitted, None) == ledger.submit(submitted, None)
    assert balance(db, agent) == 1_000_000 - 20_000
    assert ledger_total(db, agent) == 20_000

    with db.write() as tx:
        TRANSACTIONS.transition(tx, "fail", txn_id, now=now)
    with pytest.raises(ExecutorError) as info:
        ledger.submit(submitted, None)
    assert info.value.category is Category.PERMANENT
    assert ledger_total(db, agent) == 20_000


def test_an_execution_past_its_tier_timeout_fails_and_submits_nothing(
    db: Database,
    scripted: Callable[..., tuple[Transactions, Scripted]],
    clock: ManualClock,
    settings: Settings,
    agent: str,
    session: str,
) -> None:
    service, executor = scripted(prepare=[lambda: clock.advance(settings.tier_instant_timeout_s)])
    reply = service.submit(session, transfer(100)).reply
    assert (reply.status, reply.body["code"]) == (503, "EXECUTOR_UNAVAILABLE")
    assert reply.body["details"]["reason"] == Reason.EXECUTION_TIMEOUT
    txn = service.get(reply.body["details"]["transaction_id"])
    assert (txn.status, txn.error) == (Status.FAILED, "EXECUTION_TIMEOUT")
    assert executor.calls == ["prepare"]
    assert balance(db, agent) == 1_000_000
    assert session_row(db, session)["reserved"] == 0


def activate_kill_switch(db: Database, now: int) -> None:
    """The real activation: suspend agents, revoke sessions, cancel open transactions."""
    killswitch.activate_now(db, "test: stop everything", now=now, actor="operator:test")


def test_a_kill_switch_between_prepare_and_submit_means_nothing_is_submitted(
    db: Database,
    scripted: Callable[..., tuple[Transactions, Scripted]],
    clock: ManualClock,
    agent: str,
    session: str,
) -> None:
    service, executor = scripted(prepare=[lambda: activate_kill_switch(db, clock.now())])
    reply = service.submit(session, transfer(100)).reply

    assert reply.status == 200
    assert (reply.body["status"], reply.body["error"]) == ("CANCELLED", "KILL_SWITCH")
    assert executor.calls == ["prepare"]  # never submit
    assert balance(db, agent) == 1_000_000
    assert ledger_total(db, agent) == 0
    assert session_row(db, session) == {"spent": 0, "reserved": 0, "tx_count": 1}


def test_only_one_of_many_workers_claims_a_queued_transaction(
    db: Database,
    service: Transactions,
    session: str,
    clock: ManualClock,
    agent: str,
) -> None:
    txn_id = service.submit(session, transfer(20_000)).reply.body["transaction_id"]
    queued = service.get(txn_id)
    clock.advance(10_000)

    outcomes = race(8, lambda i: service.loop.start(queued).status)

    assert tally(outcomes) == {"won": 1, "TX_ALREADY_PROCESSED": 7}
    assert [o.value for o in outcomes if o.won] == [Status.CONFIRMED]
    assert ledger_total(db, agent) == 20_000


def test_a_kill_switch_racing_many_executions_never_lets_a_cancelled_one_be_paid(
    db: Database, service: Transactions, clock: ManualClock, agent: str, session: str
) -> None:
    def act(i: int) -> str:
        if i == 0:
            activate_kill_switch(db, clock.now())
            return "activated"
        reply = service.submit(session, transfer(100)).reply
        return str(reply.body.get("status") or reply.body["code"])

    outcomes = race(12, act)

    assert {o.code for o in outcomes if not o.won} <= {"SESSION_REVOKED"}
    with db.read() as tx:
        rows = tx.all(
            "SELECT t.status, l.amount FROM transactions t"
            " LEFT JOIN ledger_entries l ON l.transaction_id = t.id"
        )
    assert {r["status"] for r in rows} <= {"CONFIRMED", "CANCELLED"}
    paid = [r for r in rows if r["amount"] is not None]
    assert all(r["status"] == "CONFIRMED" for r in paid)  # nothing cancelled was paid
    confirmed = sum(1 for r in rows if r["status"] == "CONFIRMED")
    assert len(paid) == confirmed
    assert session_row(db, session) == {
        "spent": 100 * confirmed,
        "reserved": 0,
        "tx_count": len(rows),
    }
    assert balance(db, agent) == 1_000_000 - 100 * confirmed


def test_failures_racing_the_kill_switch_never_deadlock(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    for _ in range(3):
        with db.write() as tx:  # a fresh start for each round
            tx.execute("UPDATE kill_switch SET state = 'NORMAL'")
        poor = factory.agent(
            db, owner=OWNER_PUBLIC, balance=0
        )  # every execution fails: FAILED releases the reservation
        session_id = factory.session(db, poor, now=clock.now())

        def act(i: int, session_id: str = session_id) -> int:
            if i == 0:
                activate_kill_switch(db, clock.now())
                return 0
            return service.submit(session_id, transfer(100)).reply.status

        outcomes = race(10, act)

        assert {o.code for o in outcomes if not o.won} <= {"SESSION_REVOKED"}
        assert {o.value for o in outcomes[1:] if o.won} <= {400, 200}  # FAILED, or CANCELLED
        assert session_row(db, session_id)["reserved"] == 0
