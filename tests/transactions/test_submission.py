"""Submission: insert + check-and-reserve in one write; limits never overshoot under races."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from racefree.agents.errors import AgentCode
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError, spec_of
from racefree.sessions.errors import SessionCode
from racefree.settings import Settings
from racefree.testing import race, tally
from racefree.transactions.machine import Status, Tier
from racefree.transactions.service import Transactions
from tests import factory
from tests.factory import OWNER_PUBLIC
from tests.transactions.conftest import balance, session_row, statuses, transfer


def _submit_or_raise(service: Transactions, session_id: str, amount: int) -> dict[str, Any]:
    reply = service.submit(session_id, transfer(amount)).reply
    if reply.status >= 400:
        raise RacefreeError(spec_of(reply.body["code"]).code, details=reply.body["details"])
    return reply.body


class TestTiers:
    def test_an_instant_transaction_executes_now_and_settles_the_reservation(
        self, db: Database, service: Transactions, agent: str, session: str
    ) -> None:
        outcome = service.submit(session, transfer(500))
        assert outcome.reply.status == 200
        assert outcome.reply.body["status"] == "CONFIRMED"
        assert outcome.reply.body["tier"] == "INSTANT"
        assert outcome.reply.body["amount"] == "500"
        assert balance(db, agent) == 1_000_000 - 500
        assert session_row(db, session) == {"spent": 500, "reserved": 0, "tx_count": 1}

    def test_a_notify_transaction_executes_now_and_warns_in_the_audit_log(
        self, db: Database, service: Transactions, session: str
    ) -> None:
        outcome = service.submit(session, transfer(5000))
        assert (outcome.reply.status, outcome.reply.body["status"]) == (200, "CONFIRMED")
        assert outcome.reply.body["tier"] == "NOTIFY"
        with db.read() as tx:
            [created] = audit.entries(tx, event_type="TRANSACTION_CREATED")
        assert created.severity == "warning"

    def test_a_delay_transaction_is_queued_until_execute_after(
        self,
        db: Database,
        service: Transactions,
        session: str,
        clock: ManualClock,
        settings: Settings,
    ) -> None:
        outcome = service.submit(session, transfer(20_000))
        assert outcome.reply.status == 202
        txn = service.get(outcome.reply.body["transaction_id"])
        assert (txn.status, txn.tier) == (Status.QUEUED, Tier.DELAY)
        assert txn.execute_after_ms == clock.now_ms() + settings.tier_delay_s * 1000
        assert session_row(db, session) == {"spent": 0, "reserved": 20_000, "tx_count": 1}

    def test_an_approval_transaction_is_queued_until_the_owner_approves(
        self, service: Transactions, session: str, clock: ManualClock, settings: Settings
    ) -> None:
        outcome = service.submit(session, transfer(60_000))
        assert (outcome.reply.status, outcome.reply.body["tier"]) == (202, "APPROVAL")
        txn = service.get(outcome.reply.body["transaction_id"])
        assert txn.expires_at_ms == clock.now_ms() + settings.tier_approval_ttl_s * 1000


class TestLimits:
    @pytest.mark.parametrize(
        ("constraints", "amounts", "limit"),
        [
            ({"max_amount_per_tx": 100}, [101], "max_amount_per_tx"),
            ({"max_transactions": 2}, [1, 1, 1], "max_transactions"),
            ({"max_total_amount": 250}, [100, 100, 100], "max_total_amount"),
        ],
    )
    def test_a_refused_submission_names_its_limit_and_leaves_nothing(
        self,
        db: Database,
        service: Transactions,
        agent: str,
        clock: ManualClock,
        constraints: dict[str, int],
        amounts: list[int],
        limit: str,
    ) -> None:
        session_id = factory.session(db, agent, now=clock.now(), constraints=constraints)
        for amount in amounts[:-1]:
            _submit_or_raise(service, session_id, amount)
        before = session_row(db, session_id)
        with pytest.raises(RacefreeError) as info:
            service.submit(session_id, transfer(amounts[-1]))
        assert info.value.code is SessionCode.SESSION_LIMIT_EXCEEDED
        assert info.value.status == 403
        assert info.value.details["limit"] == limit
        assert session_row(db, session_id) == before
        assert sum(statuses(db, session_id).values()) == len(amounts) - 1

    def test_a_revoked_session_cannot_submit(
        self, db: Database, service: Transactions, session: str
    ) -> None:
        with db.write() as tx:
            tx.execute("UPDATE sessions SET revoked_at = 1 WHERE id = :id", {"id": session})
        with pytest.raises(RacefreeError) as info:
            service.submit(session, transfer(10))
        assert info.value.code is SessionCode.SESSION_REVOKED
        assert statuses(db, session) == {}

    def test_a_suspended_agents_session_cannot_submit(
        self, db: Database, service: Transactions, clock: ManualClock
    ) -> None:
        agent_id = factory.agent(db, owner=OWNER_PUBLIC, balance=100, status="SUSPENDED")
        session_id = factory.session(db, agent_id, now=clock.now())
        with pytest.raises(RacefreeError) as info:
            service.submit(session_id, transfer(10))
        assert info.value.code is AgentCode.AGENT_SUSPENDED


class Watcher:
    """Samples a session's counters in a thread during a race: invariants hold at every moment."""

    def __init__(self, db: Database, session_id: str) -> None:
        self.samples: list[dict[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(db, session_id))

    def _run(self, db: Database, session_id: str) -> None:
        while not self._stop.is_set():
            self.samples.append(session_row(db, session_id))

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize(
    ("constraints", "amount"),
    [({"max_transactions": 5}, 100), ({"max_total_amount": 500}, 100)],
    ids=["max_transactions", "max_total_amount"],
)
def test_twenty_concurrent_submissions_admit_exactly_five(
    db: Database,
    service: Transactions,
    agent: str,
    clock: ManualClock,
    constraints: dict[str, int],
    amount: int,
) -> None:
    session_id = factory.session(db, agent, now=clock.now(), constraints=constraints)
    with Watcher(db, session_id) as watcher:
        outcomes = race(20, lambda i: _submit_or_raise(service, session_id, amount))

    assert tally(outcomes) == {"won": 5, "SESSION_LIMIT_EXCEEDED": 15}
    limit_names = {o.error.details["limit"] for o in outcomes if isinstance(o.error, RacefreeError)}
    assert limit_names == {next(iter(constraints))}
    assert session_row(db, session_id) == {"spent": 500, "reserved": 0, "tx_count": 5}
    assert statuses(db, session_id) == {"CONFIRMED": 5}
    assert watcher.samples
    for sample in watcher.samples:
        assert sample["spent"] + sample["reserved"] <= 500
        assert sample["tx_count"] <= 5
