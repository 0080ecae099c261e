"""Deadlines fire at their time, not up to a second early (issue 16, 6).

A deadline computed from whole seconds (``now // 1000 + timeout``) fires
anywhere in (T-1, T] after the event that set it. With millisecond
deadlines a transaction submitted at x.900 s with a 300 s delay runs at
x.900 + 300 s, not at x + 300 s.
"""

from __future__ import annotations

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.transactions import submission
from racefree.transactions.idempotency import Reply
from racefree.transactions.service import Transactions
from tests.transactions.conftest import transfer

EARLY_S = 0.5


def _submit(service: Transactions, session: str, amount: int) -> str:
    return str(service.submit(session, transfer(amount)).reply.body["transaction_id"])


def test_a_delayed_transaction_runs_at_its_time(
    service: Transactions, clock: ManualClock, settings: Settings, session: str
) -> None:
    clock.advance(0.9)
    _submit(service, session, 20_000)
    clock.advance(settings.tier_delay_s - EARLY_S)
    assert service.run_due() == 0
    clock.advance(EARLY_S)
    assert service.run_due() == 1


def test_an_approval_expires_at_its_time(
    service: Transactions, clock: ManualClock, settings: Settings, session: str
) -> None:
    clock.advance(0.9)
    _submit(service, session, 60_000)
    clock.advance(settings.tier_approval_ttl_s - EARLY_S)
    assert service.expire_due() == 0
    clock.advance(EARLY_S)
    assert service.expire_due() == 1


def test_a_stranded_execution_is_released_at_its_deadline(
    db: Database, service: Transactions, clock: ManualClock, settings: Settings, session: str
) -> None:
    """A process that claimed a transaction and died: the sweep ends it at its deadline."""
    clock.advance(0.9)
    with db.write() as tx:
        txn = submission.submit(
            tx,
            settings,
            session_id=session,
            request=transfer(500),
            idempotency_key=None,
            now=clock.now(),
            now_ms=clock.now_ms(),
        )
        assert not isinstance(txn, Reply)
        service.loop.claim(tx, txn, now=clock.now())
    clock.advance(settings.tier_instant_timeout_s - EARLY_S)
    assert service.release_stale() == 0
    clock.advance(EARLY_S)
    assert service.release_stale() == 1
