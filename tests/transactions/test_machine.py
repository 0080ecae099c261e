"""The transaction machine is the table in docs/state-machines.md; illegal moves are typed 409s."""

from __future__ import annotations

import pytest

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import MachineCode, RacefreeError
from racefree.transactions.errors import TransactionCode
from racefree.transactions.machine import TRANSACTIONS, Status
from racefree.transactions.service import Transactions
from tests.transactions.conftest import transfer

DESIGN_TABLE = {
    "PENDING": ["CANCELLED", "EXECUTING", "FAILED", "QUEUED"],
    "QUEUED": ["CANCELLED", "EXECUTING", "EXPIRED"],
    "EXECUTING": ["CANCELLED", "FAILED", "SUBMITTED"],
    "SUBMITTED": ["CONFIRMED", "FAILED"],
    "CONFIRMED": [],
    "FAILED": [],
    "CANCELLED": [],
    "EXPIRED": [],
}


def test_the_machine_allows_exactly_the_designed_moves() -> None:
    assert {s.value: TRANSACTIONS.targets(s) for s in Status} == DESIGN_TABLE
    assert TRANSACTIONS.terminal == {"CONFIRMED", "FAILED", "CANCELLED", "EXPIRED"}


def test_an_illegal_move_is_invalid_state_transition_with_current_requested_allowed() -> None:
    with pytest.raises(RacefreeError) as info:
        TRANSACTIONS.check(Status.QUEUED, "confirm")
    assert info.value.code is MachineCode.INVALID_STATE_TRANSITION
    assert info.value.status == 409
    assert info.value.details == {
        "current": "QUEUED",
        "requested": "CONFIRMED",
        "allowed": ["CANCELLED", "EXECUTING", "EXPIRED"],
    }


def test_an_illegal_move_on_a_stored_transaction_changes_nothing(
    db: Database, service: Transactions, session: str, clock: ManualClock
) -> None:
    outcome = service.submit(session, transfer(20_000))  # DELAY: QUEUED
    txn_id = outcome.reply.body["transaction_id"]
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        TRANSACTIONS.transition(tx, "confirm", txn_id, now=clock.now())
    assert info.value.code is MachineCode.INVALID_STATE_TRANSITION
    assert info.value.details["current"] == "QUEUED"
    assert service.get(txn_id).status is Status.QUEUED


def test_moving_a_missing_transaction_is_tx_not_found(db: Database, clock: ManualClock) -> None:
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        TRANSACTIONS.transition(tx, "claim", "no-such-id", now=clock.now())
    assert info.value.code is TransactionCode.TX_NOT_FOUND


def test_the_diagram_documents_the_table() -> None:
    diagram = TRANSACTIONS.to_mermaid()
    assert "    EXECUTING --> SUBMITTED: submit\n" in diagram
    assert "    QUEUED --> EXPIRED: expire\n" in diagram
