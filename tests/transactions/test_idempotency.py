"""Idempotency-Key: one execution per key, replays of the stored reply, typed conflicts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import IdempotencyCode, RacefreeError
from racefree.sessions.errors import SessionCode
from racefree.testing import race
from racefree.transactions.executors import LedgerExecutor
from racefree.transactions.machine import Transaction
from racefree.transactions.service import Outcome, Transactions
from tests import factory
from tests.factory import OWNER_PUBLIC
from tests.transactions.conftest import ledger_total, session_row, transfer


def test_the_same_key_and_body_replays_the_stored_reply(
    db: Database, service: Transactions, agent: str, session: str
) -> None:
    first = service.submit(session, transfer(100), idempotency_key="k1")
    again = service.submit(session, transfer(100), idempotency_key="k1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.reply == first.reply
    assert ledger_total(db, agent) == 100
    assert session_row(db, session)["tx_count"] == 1


def test_the_same_key_with_another_body_is_a_mismatch(service: Transactions, session: str) -> None:
    service.submit(session, transfer(100), idempotency_key="k1")
    with pytest.raises(RacefreeError) as info:
        service.submit(session, transfer(101), idempotency_key="k1")
    assert (info.value.code, info.value.status) == (IdempotencyCode.IDEMPOTENCY_KEY_MISMATCH, 422)


def test_keys_are_scoped_to_their_session(
    db: Database, service: Transactions, agent: str, session: str, clock: ManualClock
) -> None:
    other = factory.session(db, agent, now=clock.now())
    service.submit(session, transfer(100), idempotency_key="k1")
    assert not service.submit(other, transfer(100), idempotency_key="k1").replayed
    assert ledger_total(db, agent) == 200


def test_queued_replies_are_replayed_with_202(service: Transactions, session: str) -> None:
    first = service.submit(session, transfer(20_000), idempotency_key="k1")
    again = service.submit(session, transfer(20_000), idempotency_key="k1")
    assert first.reply.status == again.reply.status == 202
    assert again.replayed and again.reply.body == first.reply.body


def test_a_failed_execution_replays_its_error(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    poor = factory.session(db, factory.agent(db, owner=OWNER_PUBLIC, balance=10), now=clock.now())
    first = service.submit(poor, transfer(100), idempotency_key="k1")
    again = service.submit(poor, transfer(100), idempotency_key="k1")
    assert first.reply.status == again.reply.status == 400
    assert again.reply.body["code"] == "INSUFFICIENT_BALANCE"


def test_a_submission_refused_by_the_limits_leaves_the_key_free(
    db: Database, service: Transactions, agent: str, clock: ManualClock
) -> None:
    session_id = factory.session(db, agent, now=clock.now(), constraints={"max_amount_per_tx": 100})
    with pytest.raises(RacefreeError):
        service.submit(session_id, transfer(500), idempotency_key="k1")
    with pytest.raises(RacefreeError) as info:  # the key was not taken: the limit answers again
        service.submit(session_id, transfer(500), idempotency_key="k1")
    assert info.value.code is SessionCode.SESSION_LIMIT_EXCEEDED


class Gate(LedgerExecutor):
    """Holds ``prepare`` until released, so a request can be caught in flight."""

    def __init__(self, db: Database, clock: ManualClock) -> None:
        super().__init__(db, clock)
        self.entered = threading.Event()
        self.release = threading.Event()

    def prepare(self, txn: Transaction) -> int:
        self.entered.set()
        assert self.release.wait(30)
        return super().prepare(txn)


def test_a_request_while_the_first_is_in_flight_is_key_in_use(
    db: Database, clock: ManualClock, make_service: Callable[..., Transactions], session: str
) -> None:
    gate = Gate(db, clock)
    service = make_service(gate)
    results: list[Outcome] = []
    first = threading.Thread(
        target=lambda: results.append(service.submit(session, transfer(100), idempotency_key="k"))
    )
    first.start()
    try:
        assert gate.entered.wait(30)
        with pytest.raises(RacefreeError) as info:
            service.submit(session, transfer(100), idempotency_key="k")
    finally:
        gate.release.set()
        first.join()
    assert info.value.code is IdempotencyCode.IDEMPOTENCY_KEY_IN_USE
    assert (info.value.status, info.value.retryable) == (409, True)
    assert info.value.retry_after == 1
    replay = service.submit(session, transfer(100), idempotency_key="k")
    assert replay.replayed and replay.reply == results[0].reply


def test_ten_identical_concurrent_requests_execute_once(
    db: Database, service: Transactions, agent: str, session: str
) -> None:
    def attempt(i: int) -> Any:
        return service.submit(session, transfer(100), idempotency_key="same")

    outcomes = race(10, attempt)

    executed = [o.value for o in outcomes if o.won and not o.value.replayed]
    assert len(executed) == 1
    original = executed[0].reply
    for o in outcomes:
        if o.won:
            assert o.value.reply == original
        else:
            assert o.code == "IDEMPOTENCY_KEY_IN_USE"
    assert ledger_total(db, agent) == 100
    assert session_row(db, session) == {"spent": 100, "reserved": 0, "tx_count": 1}
    replay = service.submit(session, transfer(100), idempotency_key="same")
    assert replay.replayed and replay.reply == original
