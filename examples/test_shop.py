"""Prove the shop's pay endpoint race-free with racefree.testing (run: pytest examples/).

The ``racefree_server`` fixture (from the racefree pytest plugin) is a real
server on a free port; ``race`` releases ten payers together on a barrier and
keeps every outcome, so the assertions are exact: ten answers, one
transaction, one debit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from racefree.client import SessionClient
from racefree.testing import Server, race
from shop import pay, pay_naively

PAYERS = 10
PRICE = 250


@pytest.fixture
def agent(racefree_server: Server) -> Iterator[tuple[SessionClient, str]]:
    with racefree_server.api() as ops:
        buyer = ops.agents.create("shop-buyer")
        ops.agents.deposit(buyer.id, 10_000)
        token = ops.sessions.open(buyer.id).token
    with SessionClient(racefree_server.base_url, token) as client:
        yield client, buyer.id


def _balance(server: Server, agent_id: str) -> int:
    with server.api() as ops:
        return int(ops.agents.get(agent_id).balance)


def test_ten_concurrent_payments_of_one_order_charge_it_once(
    racefree_server: Server, agent: tuple[SessionClient, str]
) -> None:
    client, agent_id = agent
    outcomes = race(PAYERS, lambda: pay(client, "order-42", PRICE))
    assert outcomes.tally() == {"won": PAYERS}  # every click gets an answer...
    assert len({t.transaction_id for t in outcomes.values}) == 1  # ...about one transaction
    assert {t.status for t in outcomes.values} == {"CONFIRMED"}
    assert _balance(racefree_server, agent_id) == 10_000 - PRICE  # charged once


def test_the_same_race_catches_the_naive_handler(
    racefree_server: Server, agent: tuple[SessionClient, str]
) -> None:
    client, agent_id = agent
    outcomes = race(PAYERS, lambda: pay_naively(client, "order-43", PRICE))
    assert len({t.transaction_id for t in outcomes.values}) == PAYERS  # the double charge
    assert _balance(racefree_server, agent_id) == 10_000 - PAYERS * PRICE
