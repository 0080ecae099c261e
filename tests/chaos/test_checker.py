"""The chaos checker is strict: each kind of damage shows up as exactly its own violation.

A small real history (an audited deposit, a CONFIRMED and a QUEUED
transaction) is checked, then damaged one way at a time and checked again:
the new violations must be exactly the rules that damage breaks.
"""

from __future__ import annotations

import pytest

from racefree import agents
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.transactions.service import Transactions
from tests import factory
from tests.chaos.checker import Report, check_database
from tests.chaos.history import Answer, Deposit, History, Submission
from tests.transactions.conftest import transfer

DAMAGE = {
    "balance": (
        "UPDATE accounts SET balance = balance - 1",
        "UPDATE accounts SET balance = balance + 1",
        {"deposits - balance == CONFIRMED"},
    ),
    "ledger": (
        "UPDATE ledger_entries SET amount = amount + 1",
        "UPDATE ledger_entries SET amount = amount - 1",
        {"CONFIRMED == ledger debits", "ledger entry iff CONFIRMED"},
    ),
    "reserved": (
        "UPDATE sessions SET reserved = reserved + 1",
        "UPDATE sessions SET reserved = reserved - 1",
        {"session reserved == unfinished"},
    ),
    "spent": (
        "UPDATE sessions SET spent = spent + 1",
        "UPDATE sessions SET spent = spent - 1",
        {"session spent == CONFIRMED"},
    ),
    "tx_count": (
        "UPDATE sessions SET tx_count = tx_count + 1",
        "UPDATE sessions SET tx_count = tx_count - 1",
        {"session tx_count == transactions"},
    ),
    "stranded": (
        "UPDATE transactions SET execute_after_ms = 0 WHERE status = 'QUEUED'",
        "UPDATE transactions SET execute_after_ms = :later WHERE status = 'QUEUED'",
        {"nothing stranded"},
    ),
}


@pytest.fixture
def history(db: Database, clock: ManualClock, settings: Settings, sleeps: list[float]) -> History:
    with db.write() as tx:
        agent = agents.create(tx, name="checked", now=clock.now()).id
        agents.deposit(tx, agent, 100_000, now=clock.now())
    session = factory.session(db, agent, now=clock.now())
    service = Transactions(db, clock, settings, sleep=sleeps.append)
    history = History()
    history.add_deposit(Deposit(agent, 100_000, Answer(200)))
    for key, amount in (("paid", 500), ("queued", 20_000)):
        reply = service.submit(session, transfer(amount), idempotency_key=key).reply
        history.add_submission(
            Submission(
                session, agent, key, amount, [Answer(reply.status, status=reply.body["status"])]
            )
        )
    return history


def _rules(db: Database, history: History) -> set[str]:
    report = Report()
    check_database(report, db, history)
    assert report.checked > 10
    return set(report.by_rule)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_each_damage_is_exactly_its_own_violation(
    damage: str, db: Database, history: History, clock: ManualClock
) -> None:
    before = _rules(db, history)
    do, undo, broken = DAMAGE[damage]
    later = {"later": clock.now_ms() + 3_600_000}
    with db.write() as tx:
        tx.execute(do)
    assert _rules(db, history) - before == broken
    with db.write() as tx:
        tx.execute(undo, later if ":later" in undo else None)
    assert _rules(db, history) == before


def test_a_client_told_a_status_the_row_does_not_have_is_a_violation(
    db: Database, history: History
) -> None:
    before = _rules(db, history)
    paid = history.submissions[0]
    paid.answers.append(Answer(400, code="INSUFFICIENT_BALANCE", status="FAILED"))
    history.answers.append(Answer(500, code="INTERNAL_ERROR", path="/v1/transactions"))
    assert _rules(db, history) - before == {"answered status is final", "never 500"}
