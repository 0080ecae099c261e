"""core.cas: one row back means the caller won; none means the classifier explains why."""

from __future__ import annotations

import pytest

from racefree.core.cas import cas_update
from racefree.core.db import Database, Tx
from racefree.core.errors import GeneralCode, RacefreeError
from racefree.testing import race, tally
from racefree.transactions.errors import TransactionCode


@pytest.fixture
def account(db: Database) -> Database:
    """A test-only table: core is tested on no domain's table."""
    with db.write() as tx:
        tx.execute(
            "CREATE TABLE probe_accounts (agent_id VARCHAR(36) PRIMARY KEY,"
            " balance BIGINT NOT NULL CHECK (balance >= 0))"
        )
        tx.execute("CREATE TABLE probe_agents (id VARCHAR(36) PRIMARY KEY, name TEXT NOT NULL)")
        tx.execute("INSERT INTO probe_agents VALUES ('a1', 'agent')")
        tx.execute("INSERT INTO probe_accounts VALUES ('a1', 100)")
    return db


def _classify(tx: Tx) -> RacefreeError:
    if tx.scalar("SELECT 1 FROM probe_accounts WHERE agent_id = 'a1'") is None:
        return RacefreeError(GeneralCode.NOT_FOUND)
    return RacefreeError(TransactionCode.INSUFFICIENT_BALANCE)


DEBIT = (
    "UPDATE probe_accounts SET balance = balance - :amount"
    " WHERE agent_id = :id AND balance >= :amount"
)


def test_match_returns_the_updated_row(account: Database) -> None:
    with account.write() as tx:
        row = cas_update(tx, DEBIT, {"id": "a1", "amount": 30}, classify=_classify)
    assert row == {"agent_id": "a1", "balance": 70}


def test_miss_raises_the_classified_error_and_the_transaction_rolls_back(
    account: Database,
) -> None:
    with pytest.raises(RacefreeError) as info, account.write() as tx:
        tx.execute("UPDATE probe_agents SET name = 'changed' WHERE id = 'a1'")
        cas_update(tx, DEBIT, {"id": "a1", "amount": 101}, classify=_classify)
    assert info.value.code is TransactionCode.INSUFFICIENT_BALANCE
    with account.read() as tx:
        assert tx.scalar("SELECT name FROM probe_agents WHERE id = 'a1'") == "agent"


def test_fifty_debits_against_a_balance_for_ten(account: Database) -> None:
    def debit(i: int) -> int:
        with account.write() as tx:
            return int(
                cas_update(tx, DEBIT, {"id": "a1", "amount": 10}, classify=_classify)["balance"]
            )

    outcomes = race(50, debit)

    assert tally(outcomes) == {"won": 10, "INSUFFICIENT_BALANCE": 40}
    assert sorted(o.value for o in outcomes if o.won) == list(range(0, 100, 10))
    with account.read() as tx:
        assert tx.scalar("SELECT balance FROM probe_accounts WHERE agent_id = 'a1'") == 0
