"""Fixtures for the transactions domain: seeded rows (tests/factory) and readers of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.transactions.executors import Executor
from racefree.transactions.service import Transactions
from racefree.transactions.submission import Request
from tests import factory
from tests.factory import OWNER_PUBLIC


def session_row(db: Database, session_id: str) -> dict[str, Any]:
    with db.read() as tx:
        row = tx.one(
            "SELECT spent, reserved, tx_count FROM sessions WHERE id = :id", {"id": session_id}
        )
    assert row is not None
    return {k: int(v) for k, v in row.items()}


def balance(db: Database, agent_id: str) -> int:
    with db.read() as tx:
        return int(tx.scalar("SELECT balance FROM accounts WHERE agent_id = :id", {"id": agent_id}))


def ledger_total(db: Database, agent_id: str) -> int:
    with db.read() as tx:
        return int(
            tx.scalar(
                "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE agent_id = :id",
                {"id": agent_id},
            )
        )


def statuses(db: Database, session_id: str) -> dict[str, int]:
    with db.read() as tx:
        rows = tx.all(
            "SELECT status, COUNT(*) AS n FROM transactions WHERE session_id = :id GROUP BY status",
            {"id": session_id},
        )
    return {r["status"]: int(r["n"]) for r in rows}


def transfer(amount: int, destination: str = "acct:shop") -> Request:
    return Request(type="TRANSFER", amount=amount, destination=destination)


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff delays the loop asked for (tests never really sleep)."""
    return []


@pytest.fixture
def make_service(
    db: Database, clock: ManualClock, settings: Settings, sleeps: list[float]
) -> Callable[..., Transactions]:
    def make(executor: Executor | None = None) -> Transactions:
        return Transactions(db, clock, settings, executor, sleep=sleeps.append)

    return make


@pytest.fixture
def service(make_service: Callable[..., Transactions]) -> Transactions:
    return make_service()


@pytest.fixture
def agent(db: Database) -> str:
    return factory.agent(db, balance=1_000_000, owner=OWNER_PUBLIC)


@pytest.fixture
def session(db: Database, agent: str, clock: ManualClock) -> str:
    return factory.session(db, agent, now=clock.now())
