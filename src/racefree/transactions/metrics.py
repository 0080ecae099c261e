"""``racefree_transactions_total{status,tier}``: committed moves into each status, by tier.

Counted after the move's transaction commits (never for a move that rolled
back). Labels come from closed sets: the machine's statuses and the tiers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client import Counter as CounterMetric

from racefree.core.db import Row
from racefree.core.machine import Transition

TRANSACTIONS_TOTAL = CounterMetric(
    "racefree_transactions_total",
    "Transactions that reached a status (committed moves), by status and tier.",
    ["status", "tier"],
)


def moved(transition: Transition, row: Row) -> None:
    """The machine's ``on_commit``."""
    TRANSACTIONS_TOTAL.labels(transition.target, row["tier"]).inc()


def reached(status: str, tiers: Iterable[str]) -> None:
    """A set-based move (the kill switch's cancel-open): one count per row it moved."""
    for tier, count in Counter(tiers).items():
        TRANSACTIONS_TOTAL.labels(status, tier).inc(count)


def created(tier: str) -> None:
    """A new transaction, PENDING, committed."""
    TRANSACTIONS_TOTAL.labels("PENDING", tier).inc()
