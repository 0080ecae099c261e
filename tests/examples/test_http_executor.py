"""examples/http_executor.py through RACEFREE_EXECUTOR: HTTP and workers pay through it, once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from examples.http_executor import HttpPaymentsExecutor

from examples import fake_payments
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.testing import start_server
from racefree.transactions import plugins
from racefree.transactions.executors import LedgerExecutor
from racefree.transactions.machine import Status, Tier, Transaction
from tests.http.test_transactions import make_agent, make_session, transfer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def payments() -> Iterator[tuple[str, fake_payments.Payments]]:
    server, state = fake_payments.serve(0)
    yield f"http://127.0.0.1:{server.server_port}", state
    server.shutdown()


def test_the_executor_setting_names_a_factory_or_an_entry_point(db: Database) -> None:
    clock = ManualClock()
    assert isinstance(plugins.load_executor(db, clock, Settings()), LedgerExecutor)
    os.environ["PAYMENTS_URL"] = "http://127.0.0.1:9"
    try:
        chosen = Settings(executor="examples.http_executor:factory")
        assert isinstance(plugins.load_executor(db, clock, chosen), HttpPaymentsExecutor)
    finally:
        del os.environ["PAYMENTS_URL"]
    for wrong in ("examples.http_executor:nope", "no_such_module:f", "not-installed"):
        with pytest.raises(plugins.ExecutorConfigError, match="RACEFREE_EXECUTOR"):
            plugins.load_executor(db, clock, Settings(executor=wrong))


def test_a_retried_submit_pays_once(payments: tuple[str, fake_payments.Payments]) -> None:
    url, state = payments
    executor = HttpPaymentsExecutor(url)
    txn = Transaction(
        id="tx-1",
        agent_id="a",
        session_id="s",
        type="TRANSFER",
        amount=250,
        destination="acct:shop",
        status=Status.SUBMITTED,
        tier=Tier.INSTANT,
        error=None,
        attempts=0,
        idempotency_key=None,
        execute_after_ms=None,
        expires_at_ms=None,
        deadline_at_ms=None,
        reference=None,
        created_at=0,
        updated_at=0,
        submitted_at=None,
        confirmed_at=None,
    )
    prepared = executor.prepare(txn)
    first = executor.submit(txn, prepared)
    assert executor.submit(txn, prepared) == first  # the retry finds the payment
    assert executor.confirm(txn, None) is True
    assert (state.puts, len(state.payments)) == (2, 1)


@pytest.mark.server
def test_http_and_workers_pay_through_the_configured_executor(
    db_url: str, tmp_path: Path, payments: tuple[str, fake_payments.Payments]
) -> None:
    url, state = payments
    server = start_server(
        db_url,
        tmp_path,
        env={
            "RACEFREE_EXECUTOR": "examples.http_executor:factory",
            "PAYMENTS_URL": url,
            "PYTHONPATH": str(REPO),
            "RACEFREE_TIER_DELAY_S": "0",
            "RACEFREE_WORKER_INTERVAL_S": "0.1",
        },
    )
    try:
        op = server.operator_headers()
        with server.client() as http:
            session = make_session(http, op, make_agent(http, op))
            instant = http.post("/v1/transactions", json=transfer(250), headers=session)
            assert instant.json()["status"] == "CONFIRMED", instant.text
            delayed = http.post("/v1/transactions", json=transfer(20_000), headers=session)
            assert delayed.status_code == 202  # the DELAY tier: a worker executes it
            delayed_id = delayed.json()["transaction_id"]
            deadline = time.monotonic() + 30
            while http.get(f"/v1/transactions/{delayed_id}", headers=op).json()["status"] != (
                "CONFIRMED"
            ):
                assert time.monotonic() < deadline, "the worker never executed it"
                time.sleep(0.1)
    finally:
        server.stop()
    assert set(state.payments) == {instant.json()["transaction_id"], delayed_id}
    assert state.payments[delayed_id]["amount"] == "20000"
