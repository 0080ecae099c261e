"""Owner approval, operator rejection and approval expiry: three CASes, one winner."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree import killswitch, owners
from racefree.agents.errors import AgentCode
from racefree.client import OwnerSigner
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import MachineCode, RacefreeError
from racefree.owners.errors import OwnerCode
from racefree.settings import Settings
from racefree.testing import race
from racefree.transactions import approvals
from racefree.transactions.errors import TransactionCode
from racefree.transactions.machine import Status
from racefree.transactions.service import Transactions
from tests import factory
from tests.factory import OWNER_KEY, OWNER_PUBLIC
from tests.transactions.conftest import ledger_total, session_row, transfer

APPROVAL_AMOUNT = 60_000


def signature(
    db: Database, clock: ManualClock, txn_id: str, key: Ed25519PrivateKey = OWNER_KEY
) -> str:
    with db.write() as tx:
        nonce, _ = owners.issue_nonce(tx, now=clock.now())
    return OwnerSigner(key).header(approvals.approval_action(txn_id), nonce, clock.now())


@pytest.fixture
def queued(service: Transactions, session: str) -> Callable[[], str]:
    def make() -> str:
        reply = service.submit(session, transfer(APPROVAL_AMOUNT)).reply
        assert (reply.status, reply.body["status"]) == (202, "QUEUED")
        return str(reply.body["transaction_id"])

    return make


def test_the_owners_approval_executes_the_transaction_and_locks_ownership_in(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    queued: Callable[[], str],
    agent: str,
    session: str,
) -> None:
    txn_id = queued()
    txn = service.approve(txn_id, signature(db, clock, txn_id))
    assert txn.status is Status.CONFIRMED
    assert ledger_total(db, agent) == APPROVAL_AMOUNT
    assert session_row(db, session) == {"spent": APPROVAL_AMOUNT, "reserved": 0, "tx_count": 1}
    with db.read() as tx:
        assert tx.scalar("SELECT owner_verified FROM agents WHERE id = :id", {"id": agent}) == 1
        [approved] = audit.entries(tx, event_type="TRANSACTION_APPROVED")
    assert approved.transaction_id == txn_id


def test_a_signature_from_someone_else_is_owner_mismatch(
    db: Database, service: Transactions, clock: ManualClock, queued: Callable[[], str]
) -> None:
    txn_id = queued()
    with pytest.raises(RacefreeError) as info:
        service.approve(txn_id, signature(db, clock, txn_id, Ed25519PrivateKey.generate()))
    assert info.value.code is OwnerCode.OWNER_MISMATCH
    assert service.get(txn_id).status is Status.QUEUED


def test_approval_without_a_signature_is_owner_auth_required(
    service: Transactions, queued: Callable[[], str]
) -> None:
    with pytest.raises(RacefreeError) as info:
        service.approve(queued(), None)
    assert info.value.code is OwnerCode.OWNER_AUTH_REQUIRED


def test_a_delayed_transaction_cannot_be_approved(
    db: Database, service: Transactions, clock: ManualClock, session: str
) -> None:
    txn_id = service.submit(session, transfer(20_000)).reply.body["transaction_id"]
    with pytest.raises(RacefreeError) as info:
        service.approve(txn_id, signature(db, clock, txn_id))
    assert info.value.code is MachineCode.INVALID_STATE_TRANSITION
    assert info.value.details["current"] == "QUEUED"


def test_approval_after_the_window_is_tx_expired_even_before_the_sweep(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    settings: Settings,
    queued: Callable[[], str],
) -> None:
    txn_id = queued()
    clock.advance(settings.tier_approval_ttl_s)
    with pytest.raises(RacefreeError) as info:
        service.approve(txn_id, signature(db, clock, txn_id))
    assert (info.value.code, info.value.status) == (TransactionCode.TX_EXPIRED, 410)


def test_rejection_cancels_and_releases_the_reservation(
    db: Database, service: Transactions, queued: Callable[[], str], session: str
) -> None:
    txn = service.reject(queued(), actor="operator:test")
    assert (txn.status, txn.error) == (Status.CANCELLED, "REJECTED")
    assert session_row(db, session) == {"spent": 0, "reserved": 0, "tx_count": 1}


def test_expiry_waits_for_the_window_to_end(
    service: Transactions, clock: ManualClock, settings: Settings, queued: Callable[[], str]
) -> None:
    txn_id = queued()
    with pytest.raises(RacefreeError) as info:
        service.expire(txn_id)
    assert info.value.code is MachineCode.INVALID_STATE_TRANSITION
    clock.advance(settings.tier_approval_ttl_s)
    assert service.expire(txn_id).status is Status.EXPIRED


LOSER_CODES = {
    "approve": {"TX_ALREADY_PROCESSED"},
    "reject": {"TX_ALREADY_PROCESSED"},
    "expire": {"TX_EXPIRED"},
}
FINAL_STATUS = {"approve": "CONFIRMED", "reject": "CANCELLED", "expire": "EXPIRED"}


def _race_decisions(
    db: Database, service: Transactions, clock: ManualClock, txn_id: str
) -> tuple[str, dict[str, str | None]]:
    """Approve, reject and expire ``txn_id`` at once; the winner's name and the losers' codes."""
    expires_at_ms = service.get(txn_id).expires_at_ms
    assert expires_at_ms is not None
    header = signature(db, clock, txn_id)

    def expire() -> Any:  # the expiry worker, whose clock says the window just ended
        with db.write() as tx:
            return approvals.expire(tx, txn_id, now=expires_at_ms // 1000, now_ms=expires_at_ms)

    racers: dict[str, Callable[[], Any]] = {
        "approve": lambda: service.approve(txn_id, header),
        "reject": lambda: service.reject(txn_id, actor="operator:test"),
        "expire": expire,
    }
    names = list(racers)
    random.shuffle(names)  # the last thread through the barrier tends to win: vary it
    outcomes = race(3, lambda i: racers[names[i]]())
    won = [names[i] for i, o in enumerate(outcomes) if o.won]
    assert len(won) == 1, outcomes
    return won[0], {names[i]: o.code for i, o in enumerate(outcomes) if not o.won}


def test_approve_reject_and_expiry_racing_always_have_one_winner_and_exact_loser_codes(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    queued: Callable[[], str],
    agent: str,
    session: str,
) -> None:
    winners: list[str] = []
    for _ in range(12):
        txn_id = queued()
        winner, losers = _race_decisions(db, service, clock, txn_id)
        winners.append(winner)
        assert set(losers.values()) == LOSER_CODES[winner], (winner, losers)
        assert service.get(txn_id).status == FINAL_STATUS[winner]

    confirmed = winners.count("approve") * APPROVAL_AMOUNT
    assert session_row(db, session) == {"spent": confirmed, "reserved": 0, "tx_count": 12}
    assert ledger_total(db, agent) == confirmed


def test_approvals_racing_the_kill_switch_never_deadlock_and_never_pay_a_cancelled_one(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    for _ in range(6):
        with db.write() as tx:  # a fresh start for each round
            tx.execute("UPDATE kill_switch SET state = 'NORMAL'")
        agent_id = factory.agent(
            db, owner=OWNER_PUBLIC, balance=1_000_000
        )  # GRACE: approval locks ownership in
        session_id = factory.session(db, agent_id, now=clock.now())
        reply = service.submit(session_id, transfer(APPROVAL_AMOUNT)).reply
        txn_id = reply.body["transaction_id"]
        header = signature(db, clock, txn_id)

        def act(i: int, txn_id: str = txn_id, header: str = header) -> str:
            if i == 0:
                killswitch.activate_now(db, "drill", now=clock.now())
                return "activated"
            return service.approve(txn_id, header).status.value

        outcomes = race(2, act)

        assert outcomes[0].won
        assert outcomes[1].won or outcomes[1].code == "TX_ALREADY_PROCESSED"
        final = service.get(txn_id)
        assert final.status in (Status.CONFIRMED, Status.CANCELLED)
        paid = ledger_total(db, agent_id)
        assert paid == (APPROVAL_AMOUNT if final.status is Status.CONFIRMED else 0)
        assert session_row(db, session_id)["reserved"] == 0


def test_a_suspended_agents_transaction_cannot_be_approved(
    db: Database,
    service: Transactions,
    clock: ManualClock,
    queued: Callable[[], str],
    agent: str,
) -> None:
    txn_id = queued()
    with db.write() as tx:
        tx.execute("UPDATE agents SET status = 'SUSPENDED' WHERE id = :id", {"id": agent})
    with pytest.raises(RacefreeError) as info:
        service.approve(txn_id, signature(db, clock, txn_id))
    assert (info.value.code, info.value.status) == (AgentCode.AGENT_SUSPENDED, 409)
    assert service.get(txn_id).status is Status.QUEUED
