"""The cascade against writers caught mid-flight (PostgreSQL, READ COMMITTED).

SQLite runs one writer at a time, so these interleavings cannot happen there.
On PostgreSQL each test holds a competing write open -- the real domain call
(an executor's claim, a submission, a session, an agent, a rejection) -- starts
an activation, waits until the activation is blocked on that writer's row lock
(seen in ``pg_stat_activity``, no sleeps), then commits the competitor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from racefree import agents, killswitch, sessions
from racefree.core.clock import ManualClock
from racefree.core.db import Database, Tx
from racefree.settings import Settings
from racefree.testing import wait_until_blocked
from racefree.transactions import approvals, moves, submission
from racefree.transactions.machine import TRANSACTIONS, Move, Status, Transaction
from tests import factory

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


def _activate_against(
    db: Database, clock: ManualClock, competitor: Callable[[Tx], None]
) -> killswitch.Activation:
    """Run ``competitor`` in an open transaction, activate meanwhile, then commit it."""
    results: list[killswitch.Activation] = []
    with db.write() as tx:
        competitor(tx)
        worker = threading.Thread(
            target=lambda: results.append(killswitch.activate_now(db, "race", now=clock.now()))
        )
        worker.start()
        wait_until_blocked(db)
    worker.join(timeout=60)
    assert results, "the activation failed"
    return results[0]


def test_an_executor_that_claimed_a_transaction_first_keeps_it_and_its_reservation(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        a = factory.agent(tx, now=clock.now())
        s = factory.session(tx, a, reserved=30, now=clock.now())
        claimed = factory.transaction(tx, a, s, status="EXECUTING", amount=10, now=clock.now())
        factory.transaction(tx, a, s, status="QUEUED", amount=20, now=clock.now())

    def claim(tx: Tx) -> None:
        # the executor's claim before the irreversible step (ExecutionLoop._claim_submitted)
        now = clock.now()
        TRANSACTIONS.transition(tx, Move.SUBMIT, claimed, now=now, values={"submitted_at": now})

    result = _activate_against(db, clock, claim)
    assert result.transactions_cancelled == 1
    with db.read() as tx:
        assert tx.scalar("SELECT status FROM transactions WHERE id = :id", {"id": claimed}) == (
            "SUBMITTED"
        )
        # only the cancelled one's 20 came off; the claimed 10 is still reserved
        assert tx.scalar("SELECT reserved FROM sessions WHERE id = :id", {"id": s}) == 10


def test_a_transaction_admitted_just_before_the_revoke_is_cancelled_and_released(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        a = factory.agent(tx, now=clock.now())
        s = factory.session(tx, a, reserved=0, now=clock.now())

    def admit(tx: Tx) -> None:
        # a real admission: insert the transaction and reserve on the live session
        txn = submission.submit(
            tx,
            Settings(),
            session_id=s,
            request=submission.Request(type="TRANSFER", amount=50, destination="dest"),
            idempotency_key=None,
            now=clock.now(),
        )
        assert isinstance(txn, Transaction)
        assert txn.status is Status.PENDING

    result = _activate_against(db, clock, admit)
    assert (result.sessions_revoked, result.transactions_cancelled) == (1, 1)
    with db.read() as tx:
        row = tx.one("SELECT reserved, revoked_at FROM sessions WHERE id = :id", {"id": s})
        open_count = tx.scalar(
            "SELECT COUNT(*) FROM transactions WHERE status IN ('PENDING', 'QUEUED', 'EXECUTING')"
        )
    assert row == {"reserved": 0, "revoked_at": clock.now()}
    assert open_count == 0


def test_a_session_opened_while_the_activation_runs_is_revoked_too(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        a = factory.agent(tx, now=clock.now())
    opened: list[str] = []

    def open_session(tx: Tx) -> None:
        # opening a session locks its agent row under status = 'ACTIVE' first
        issued = sessions.issue(tx, a, now=clock.now(), policy=sessions.Policy())
        opened.append(issued.session.id)

    result = _activate_against(db, clock, open_session)
    assert (result.agents_suspended, result.sessions_revoked) == (1, 1)
    with db.read() as tx:
        revoked_at = tx.scalar("SELECT revoked_at FROM sessions WHERE id = :id", {"id": opened[0]})
    assert revoked_at == clock.now()


def test_an_agent_created_while_the_activation_runs_is_suspended_too(
    db: Database, clock: ManualClock
) -> None:
    created: list[str] = []

    def create_agent(tx: Tx) -> None:
        # agents.create holds the kill switch row FOR SHARE before inserting
        created.append(agents.create(tx, name="late", now=clock.now()).id)

    result = _activate_against(db, clock, create_agent)
    assert result.agents_suspended == 1
    with db.read() as tx:
        row = tx.one(
            "SELECT status, suspension_reason FROM agents WHERE id = :id", {"id": created[0]}
        )
    assert row == {"status": "SUSPENDED", "suspension_reason": "kill_switch"}


def test_an_agent_reactivated_while_the_activation_runs_is_suspended_too(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        a = factory.agent(tx, now=clock.now())
        agents.suspend(tx, a, now=clock.now())

    def reactivate(tx: Tx) -> None:
        # agents.activate holds the kill switch NORMAL before the agent's CAS
        agents.activate(tx, a, now=clock.now())

    result = _activate_against(db, clock, reactivate)
    assert result.agents_suspended == 1
    with db.read() as tx:
        row = tx.one("SELECT status, suspension_reason FROM agents WHERE id = :id", {"id": a})
    assert row == {"status": "SUSPENDED", "suspension_reason": "kill_switch"}


def test_a_move_holding_a_revoked_sessions_row_does_not_deadlock_the_activation(
    db: Database, clock: ManualClock
) -> None:
    """Movers lock a session, then its transaction; the activation must take them in that order."""
    with db.write() as tx:
        a = factory.agent(tx, now=clock.now())
        s = factory.session(tx, a, reserved=20, now=clock.now())
        x = factory.transaction(tx, a, s, status="QUEUED", amount=20, now=clock.now())
        tx.execute(
            "UPDATE sessions SET revoked_at = :now, revoke_reason = 'operator' WHERE id = :id",
            {"now": clock.now(), "id": s},
        )
    results: list[object] = []

    def activate() -> None:
        try:
            results.append(killswitch.activate_now(db, "race", now=clock.now()))
        except Exception as exc:
            results.append(exc)

    worker = threading.Thread(target=activate)
    with db.write() as tx:  # an operator rejecting x: the session row first ...
        moves.lock_session(tx, approvals.load(tx, x))
        worker.start()
        wait_until_blocked(db)
        # ... then the transaction, which the activation must not be holding
        rejected = approvals.reject(tx, x, now=clock.now(), actor="operator:test")
        assert rejected.status is Status.CANCELLED
    worker.join(timeout=60)
    [result] = results
    assert isinstance(result, killswitch.Activation), result
    assert result.transactions_cancelled == 0
    with db.read() as tx:
        assert tx.scalar("SELECT reserved FROM sessions WHERE id = :id", {"id": s}) == 0
