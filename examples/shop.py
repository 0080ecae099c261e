"""A user's own endpoint built on racefree: pay for an order, however often it is clicked.

``pay(agent, order_id, amount)`` is the handler behind a "Pay" button. Two
clicks, a retrying load balancer or a crashed worker's replay can run it
concurrently for the same order. It stays race-free by letting racefree
decide: the order id is the transaction's Idempotency-Key, so every call for
one order gets the same transaction, charged once.

``pay_naively`` is the same handler without the key -- the bug that
``test_shop.py`` catches.
"""

from __future__ import annotations

from racefree.client import SessionClient, models


def pay(agent: SessionClient, order_id: str, amount: int) -> models.Transaction:
    """Charge ``amount`` for ``order_id`` exactly once, whoever else is paying it now."""
    return agent.transactions.submit(amount, f"order:{order_id}", idempotency_key=order_id)


def pay_naively(agent: SessionClient, order_id: str, amount: int) -> models.Transaction:
    """The same without an order-scoped key: each concurrent click is a new charge."""
    return agent.transactions.submit(amount, f"order:{order_id}")
