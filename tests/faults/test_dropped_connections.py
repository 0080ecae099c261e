"""Dropped database connections never answer 500 (issue 16, 4).

``pg_terminate_backend`` on every connection of a real server -- the pool's
idle ones and one in the middle of a payment -- and then requests: a
statement that provably did not commit is retried on a fresh connection;
where the outcome is unknown the answer is 503 with ``Retry-After``; and the
money invariants hold afterwards.

PostgreSQL only: a SQLite database is a file, with no connection to drop.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from racefree.core.db import Database
from racefree.testing import Server, start_server
from tests.faults.support import (
    HARNESS_APP,
    Background,
    hold_writer_lock,
    payment_of_the_only_transaction,
    wait_for_lock_waiters,
)
from tests.http.test_transactions import make_agent, make_session, transfer

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


@pytest.fixture
def harness(db_url: str) -> Iterator[Database]:
    with Database.from_url(db_url) as db:
        yield db


@pytest.fixture
def pg_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(db_url, tmp_path, env={"RACEFREE_DB_POOL_SIZE": "6"})
    yield srv
    srv.stop()


def terminate_backends(harness: Database) -> int:
    with harness.read() as tx:
        return int(
            tx.scalar(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name <> :harness",
                {"harness": HARNESS_APP},
            )
        )


def assert_no_500(responses: list[httpx.Response]) -> None:
    for response in responses:
        assert response.status_code != 500, response.text
        if response.status_code == 503:
            assert "Retry-After" in response.headers, response.text


def test_requests_after_a_wave_of_terminated_connections_never_answer_500(
    pg_server: Server, harness: Database
) -> None:
    op = pg_server.operator_headers()
    with pg_server.client() as client:
        agent = make_agent(client, op)
        session = make_session(client, op, agent)
        for _ in range(3):  # fill the pool with idle connections, then drop them all
            warm = [Background(lambda: client.get(f"/v1/agents/{agent}", headers=op))]
            [w.outcome() for w in warm]
        assert terminate_backends(harness) >= 1
        responses = [
            client.get(f"/v1/agents/{agent}", headers=op),
            client.post(f"/v1/agents/{agent}/deposit", json={"amount": "10"}, headers=op),
            client.post(
                "/v1/transactions",
                json=transfer(100),
                headers={**session, "Idempotency-Key": uuid.uuid4().hex},
            ),
            client.get("/v1/sessions/current", headers=session),
            client.get("/health"),
        ]
    assert_no_500(responses)


def test_a_payment_whose_connection_is_terminated_mid_write_answers_its_outcome_or_503(
    pg_server: Server, harness: Database
) -> None:
    op = pg_server.operator_headers()
    with pg_server.client() as client:
        agent = make_agent(client, op, balance=10_000)
        session = {**make_session(client, op, agent), "Idempotency-Key": uuid.uuid4().hex}
        with hold_writer_lock(harness, account_of=agent):
            paying = Background(
                lambda: client.post("/v1/transactions", json=transfer(700), headers=session)
            )
            wait_for_lock_waiters(harness, query_like="UPDATE accounts%")
            assert terminate_backends(harness) >= 1
        first = paying.outcome()
        replay = client.post("/v1/transactions", json=transfer(700), headers=session)
    assert_no_500([first, replay])
    status, paid, balance = payment_of_the_only_transaction(harness)
    assert paid == (1 if status == "CONFIRMED" else 0)
    assert balance == 10_000 - 700 * paid
    for response in (first, replay):
        body = response.json()
        told = body.get("status") if response.status_code < 400 else body["details"].get("status")
        if response.status_code != 503 or told is not None:
            assert told == status or status not in ("CONFIRMED", "FAILED"), body
