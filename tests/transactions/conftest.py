"""Fixtures for the transactions domain: agents, accounts and sessions inserted with SQL.

Tokens do not matter at this level (the HTTP tests use real sessions), so
sessions are rows with a random token hash and the constraints under test.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree.client import OwnerSigner
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.ids import new_id
from racefree.core.settings import Settings
from racefree.transactions.executors import Executor
from racefree.transactions.service import Transactions
from racefree.transactions.submission import Request

OWNER_KEY = Ed25519PrivateKey.generate()
OWNER_PUBLIC = OwnerSigner(OWNER_KEY).public_key
DAY = 86400


def insert_agent(
    db: Database, *, balance: int = 0, owner: str | None = OWNER_PUBLIC, status: str = "ACTIVE"
) -> str:
    agent_id = new_id()
    with db.write() as tx:
        tx.execute(
            "INSERT INTO agents (id, name, status, owner_public_key, owner_verified, created_at,"
            " updated_at) VALUES (:id, 'agent', :status, :owner, 0, 0, 0)",
            {"id": agent_id, "owner": owner, "status": status},
        )
        tx.execute(
            "INSERT INTO accounts (agent_id, balance) VALUES (:id, :balance)",
            {"id": agent_id, "balance": balance},
        )
    return agent_id


def insert_session(db: Database, agent_id: str, now: int, **constraints: int) -> str:
    session_id = new_id()
    with db.write() as tx:
        tx.execute(
            "INSERT INTO sessions (id, agent_id, token_hash, expires_at, expires_in, max_renewals,"
            " absolute_expires_at, constraints, created_at) VALUES (:id, :agent_id, :hash,"
            " :expires_at, :day, 30, :absolute, :constraints, :now)",
            {
                "id": session_id,
                "agent_id": agent_id,
                "hash": secrets.token_hex(32),
                "expires_at": now + DAY,
                "day": DAY,
                "absolute": now + 30 * DAY,
                "constraints": json.dumps(constraints) if constraints else None,
                "now": now,
            },
        )
    return session_id


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
    return insert_agent(db, balance=1_000_000)


@pytest.fixture
def session(db: Database, agent: str, clock: ManualClock) -> str:
    return insert_session(db, agent, clock.now())
