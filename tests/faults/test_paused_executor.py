"""A replica paused (SIGSTOP) in the middle of a payment, past the tier timeout (issue 16, 1).

Two real ``racefree serve`` processes on one PostgreSQL database: the first
executes the payment (its workers off), the second runs the stale-release
sweep. The payer fences the row and waits on the account row; then it is
paused, the account is released, and the payer's debit is done but not
committed while the deadline passes and the other replica's sweep settles the
transaction. When the payer resumes and commits, the settlement must not have
decided on a stale "not landed": never paid but FAILED, and the client is
told the row's final status (not 409).

PostgreSQL only: one SQLite file is served by one process, whose sweep and
executor share its one writer; that interleaving is proven in-process by
``test_stalled_settlement``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from racefree.core.db import Database
from racefree.testing import Server, start_server
from tests.faults.support import (
    Background,
    hold_writer_lock,
    payment_of_the_only_transaction,
    wait_for_lock_waiters,
)
from tests.http.test_transactions import make_agent, make_session, transfer

FAST = {
    "RACEFREE_TIER_INSTANT_TIMEOUT_S": "1",
    "RACEFREE_WORKER_INTERVAL_S": "0.1",
    "RACEFREE_WORKER_LEASE_TTL_S": "2",
}
START = 1_000_000
AMOUNT = 400


@pytest.fixture
def harness(db_url: str) -> Iterator[Database]:
    with Database.from_url(db_url) as db:
        yield db


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_replica_paused_mid_payment_past_the_deadline_pays_only_with_the_record(
    db_url: str, tmp_path: Path, harness: Database
) -> None:
    payer = start_server(db_url, tmp_path, env={**FAST, "RACEFREE_WORKERS_ENABLED": "false"})
    sweeper: Server | None = None
    try:
        op = payer.operator_headers()
        with payer.client() as client:
            agent = make_agent(client, op, balance=START)
            session = make_session(client, op, agent)
        sweeper = start_server(db_url, tmp_path, env=FAST)
        with hold_writer_lock(harness, account_of=agent):
            request = Background(
                lambda: httpx.post(
                    payer.base_url + "/v1/transactions",
                    json=transfer(AMOUNT),
                    headers=session,
                    timeout=120,
                )
            )
            wait_for_lock_waiters(harness, query_like="UPDATE accounts%")  # fenced, debiting
            os.kill(payer.process.pid, signal.SIGSTOP)
        try:
            # the debit is done but uncommitted; past the deadline the sweep queues on the row
            wait_for_lock_waiters(harness, query_like="%transactions%")
        finally:
            os.kill(payer.process.pid, signal.SIGCONT)
        response = request.outcome()
    finally:
        payer.stop()
        if sweeper is not None:
            sweeper.stop()
    status, paid, balance = payment_of_the_only_transaction(harness)
    assert paid == (1 if status == "CONFIRMED" else 0), f"{status}, paid {paid}"
    assert balance == START - AMOUNT * paid
    body = response.json()
    told = body["status"] if response.status_code < 400 else body["details"].get("status")
    assert response.status_code != 409, response.text  # today: 409 INVALID_STATE_TRANSITION
    assert told == status, response.text
