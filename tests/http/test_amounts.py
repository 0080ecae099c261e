"""One amount type everywhere, and no kept sum can overflow (issue 9, item 8).

Amounts are strings of integers, 1 <= amount <= 10^15, the same for
transactions, deposits and session limits (docs/http-api.md). The sums the database
keeps -- account balances, a session's ``reserved`` and ``spent`` -- are
refused past 10^18 by the admitting CAS with a catalog 4xx; AutoStop's daily
confirmed figure saturates at 10^18. CHECK constraints back all of them on both
engines (SQLite would otherwise turn an overflowing integer into a float).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree.core.db import Database
from tests.http.test_transactions import make_agent, make_session, problem, transfer

MAX = 10**15
KEPT_MAX = 10**18
BAD = ["0", "-1", "1.5", " 1", "01", "1e3", str(MAX + 1), str(10**18 - 1), "9" * 40]


@pytest.mark.parametrize("amount", BAD)
def test_a_transaction_amount_outside_one_to_ten_to_the_fifteenth_is_400(
    client: TestClient, operator_headers: dict[str, str], amount: str
) -> None:
    session = make_session(client, operator_headers, make_agent(client, operator_headers))
    response = client.post(
        "/v1/transactions",
        json={"type": "TRANSFER", "amount": amount, "destination": "x"},
        headers=session,
    )
    problem(response, 400, "VALIDATION_ERROR")
    assert client.get("/v1/transactions", headers=session).json()["transactions"] == []


@pytest.mark.parametrize("amount", BAD)
def test_a_deposit_outside_the_range_is_400(
    client: TestClient, operator_headers: dict[str, str], amount: str
) -> None:
    agent_id = make_agent(client, operator_headers, balance=0)
    response = client.post(
        f"/v1/agents/{agent_id}/deposit", json={"amount": amount}, headers=operator_headers
    )
    problem(response, 400, "VALIDATION_ERROR")
    agent = client.get(f"/v1/agents/{agent_id}", headers=operator_headers).json()
    assert agent["balance"] == "0"


@pytest.mark.parametrize("amount", BAD)
@pytest.mark.parametrize("limit", ["max_amount_per_tx", "max_total_amount"])
def test_a_session_limit_outside_the_range_is_400(
    client: TestClient, operator_headers: dict[str, str], amount: str, limit: str
) -> None:
    agent_id = make_agent(client, operator_headers, balance=0)
    response = client.post(
        "/v1/sessions",
        json={"agent_id": agent_id, "constraints": {limit: amount}},
        headers=operator_headers,
    )
    problem(response, 400, "VALIDATION_ERROR")


def test_the_largest_amount_is_accepted_everywhere(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    agent_id = make_agent(client, operator_headers, balance=MAX)
    session = make_session(
        client, operator_headers, agent_id, max_amount_per_tx=MAX, max_total_amount=MAX
    )
    submitted = client.post("/v1/transactions", json=transfer(MAX), headers=session)
    assert submitted.status_code == 202, submitted.text  # APPROVAL tier: queued for the owner
    assert submitted.json()["amount"] == str(MAX)


def _kept(db: Database, sql: str) -> Any:
    with db.read() as tx:
        return tx.one(sql)


def test_eleven_huge_approval_submissions_keep_an_exact_integer_reservation(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    session = make_session(client, operator_headers, make_agent(client, operator_headers))
    for _ in range(11):
        response = client.post("/v1/transactions", json=transfer(MAX), headers=session)
        assert response.status_code == 202, response.text
    current = client.get("/v1/sessions/current", headers=session).json()
    row = _kept(db, f"SELECT reserved FROM sessions WHERE id = '{current['session_id']}'")
    assert row["reserved"] == 11 * MAX and isinstance(row["reserved"], int)


def test_a_reservation_past_the_kept_maximum_is_a_clean_403(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    session = make_session(client, operator_headers, make_agent(client, operator_headers))
    session_id = client.get("/v1/sessions/current", headers=session).json()["session_id"]
    with db.write() as tx:  # a long history of open APPROVAL transactions
        tx.execute(
            "UPDATE sessions SET reserved = :r WHERE id = :id",
            {"r": KEPT_MAX - MAX + 1, "id": session_id},
        )
    response = client.post("/v1/transactions", json=transfer(MAX), headers=session)
    body = problem(response, 403, "SESSION_LIMIT_EXCEEDED")
    assert body["details"]["limit"] == "max_kept_total"
    row = _kept(db, f"SELECT reserved FROM sessions WHERE id = '{session_id}'")
    assert row["reserved"] == KEPT_MAX - MAX + 1


def test_a_deposit_past_the_kept_maximum_is_a_clean_400(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    agent_id = make_agent(client, operator_headers, balance=0)
    with db.write() as tx:
        tx.execute(
            "UPDATE accounts SET balance = :b WHERE agent_id = :id",
            {"b": KEPT_MAX - 5, "id": agent_id},
        )
    response = client.post(
        f"/v1/agents/{agent_id}/deposit", json={"amount": "10"}, headers=operator_headers
    )
    problem(response, 400, "VALIDATION_ERROR")
    agent = client.get(f"/v1/agents/{agent_id}", headers=operator_headers).json()
    assert agent["balance"] == str(KEPT_MAX - 5)


@pytest.mark.parametrize(
    ("table", "column"),
    [("accounts", "balance"), ("sessions", "reserved"), ("sessions", "spent")],
)
def test_check_constraints_refuse_a_kept_sum_past_the_maximum(
    client: TestClient, operator_headers: dict[str, str], db: Database, table: str, column: str
) -> None:
    make_session(client, operator_headers, make_agent(client, operator_headers))
    # SQLite would keep the overflow as a float; PostgreSQL's bigint refuses it by itself
    with pytest.raises(Exception, match=r"(?i)check|constraint|out of range"), db.write() as tx:
        tx.execute(f"UPDATE {table} SET {column} = {column} + {2**63 - 1}")
    with pytest.raises(Exception, match=r"(?i)check|constraint"), db.write() as tx:
        tx.execute(f"UPDATE {table} SET {column} = {KEPT_MAX + 1}")


def test_the_daily_confirmed_figure_saturates_below_the_kept_maximum(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    """AutoStop's ``agent_figures.confirmed_today`` is a kept sum too: a confirmation that
    would carry it past 10^18 leaves it at 10^18 (over every daily limit) -- never an
    overflow, a float or a 500 -- and the CHECK refuses anything above."""
    agent_id = make_agent(client, operator_headers)
    session = make_session(client, operator_headers, agent_id)
    first = client.post("/v1/transactions", json=transfer(500), headers=session)
    assert first.status_code == 200 and first.json()["status"] == "CONFIRMED", first.text
    with db.write() as tx:  # as if a day of huge confirmations came before
        tx.execute(
            "UPDATE agent_figures SET confirmed_today = :v WHERE agent_id = :id",
            {"v": KEPT_MAX - 100, "id": agent_id},
        )
    second = client.post("/v1/transactions", json=transfer(500), headers=session)
    assert second.status_code == 200 and second.json()["status"] == "CONFIRMED", second.text
    row = _kept(db, f"SELECT confirmed_today FROM agent_figures WHERE agent_id = '{agent_id}'")
    assert row == {"confirmed_today": KEPT_MAX}
    with pytest.raises(Exception, match=r"(?i)check|constraint"), db.write() as tx:
        tx.execute(
            "UPDATE agent_figures SET confirmed_today = :v WHERE agent_id = :id",
            {"v": KEPT_MAX + 1, "id": agent_id},
        )
