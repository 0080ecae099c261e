"""The figures AutoStop rules read, kept in SQL (``agent_figures``), one row per agent.

Counters the settle moves change are updated by the same transaction as the
move, with the new value read back from the UPDATE's RETURNING, so of N
concurrent settles exactly one sees a counter reach a threshold (the row lock
orders them; SQLite runs one writer at a time). Figures that are windows over
the agent's transactions (the last hour's count, the open amounts, one
destination's confirmations) are counted by a SELECT *after* :func:`lock` took
the agent's row: every transaction that could change them for this agent waits
on that lock, and on PostgreSQL (READ COMMITTED) the SELECT, a new statement,
sees everything committed before it -- so the count is exact, not a snapshot.

Lock order: :func:`lock` is the first lock of a transaction that moves an
agent's figures -- before the session and transaction rows (the movers' order)
-- so a settle that waits here holds nothing another transaction needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from racefree.core import amounts
from racefree.core.db import Tx

DAY_S = 86_400
HOUR_S = 3_600
OPEN_STATUSES = "('PENDING', 'QUEUED', 'EXECUTING', 'SUBMITTED')"


def lock(tx: Tx, agent_id: str, *, now: int) -> None:
    """Create the agent's row if needed and lock it until ``tx`` ends (one upsert)."""
    tx.execute(
        "INSERT INTO agent_figures (agent_id, updated_at) VALUES (:id, :now)"
        " ON CONFLICT (agent_id) DO UPDATE SET updated_at = excluded.updated_at",
        {"id": agent_id, "now": now},
    )


@dataclass(frozen=True, slots=True)
class Change:
    """A counter before and after this transaction's update."""

    old: int
    new: int

    def reached(self, threshold: int) -> bool:
        """This update made the figure reach ``threshold`` (true for exactly one updater)."""
        return self.old < threshold <= self.new


def failed(tx: Tx, agent_id: str, *, now: int) -> Change:
    """One more FAILED since the last CONFIRMED."""
    new = int(
        tx.scalar(
            "UPDATE agent_figures SET consecutive_failures = consecutive_failures + 1,"
            " updated_at = :now WHERE agent_id = :id RETURNING consecutive_failures",
            {"id": agent_id, "now": now},
        )
    )
    return Change(new - 1, new)


def confirmed(tx: Tx, agent_id: str, amount: int, *, now: int) -> Change:
    """A CONFIRMED amount: failures reset; today's sum grows (a new UTC day restarts it).

    The sum is kept (``core.amounts``): it saturates at ``MAX_KEPT`` (10^18), a
    hundred times any DAILY_LIMIT threshold, so it never overflows and a
    saturated sum still reads as over every limit.
    """
    today = now // DAY_S
    new = int(
        tx.scalar(
            "UPDATE agent_figures SET consecutive_failures = 0,"
            " confirmed_today = CASE WHEN day <> :today THEN :amount"
            " WHEN confirmed_today > :max_kept - :amount THEN :max_kept"
            " ELSE confirmed_today + :amount END, day = :today, updated_at = :now"
            " WHERE agent_id = :id RETURNING confirmed_today",
            {
                "id": agent_id,
                "today": today,
                "amount": amount,
                "now": now,
                "max_kept": amounts.MAX_KEPT,
            },
        )
    )
    return Change(new - amount, new)


@dataclass(frozen=True, slots=True)
class Snapshot:
    consecutive_failures: int
    confirmed_today: int


def read(tx: Tx, agent_id: str, *, now: int) -> Snapshot:
    row = tx.one(
        "SELECT consecutive_failures, day, confirmed_today FROM agent_figures WHERE agent_id = :id",
        {"id": agent_id},
    )
    if row is None:
        return Snapshot(0, 0)
    today = int(row["confirmed_today"]) if int(row["day"]) == now // DAY_S else 0
    return Snapshot(int(row["consecutive_failures"]), today)


def transactions_last_hour(tx: Tx, agent_id: str, *, now: int) -> int:
    return int(
        tx.scalar(
            "SELECT COUNT(*) FROM transactions WHERE agent_id = :id AND created_at > :since",
            {"id": agent_id, "since": now - HOUR_S},
        )
    )


def open_amount(tx: Tx, agent_id: str) -> int:
    """What the agent's admitted, unfinished transactions may still spend."""
    return int(
        tx.scalar(
            "SELECT COALESCE(SUM(amount), 0) FROM transactions WHERE agent_id = :id"
            f" AND status IN {OPEN_STATUSES}",
            {"id": agent_id},
        )
    )


def confirmed_to(tx: Tx, agent_id: str, destination: str, *, now: int) -> int:
    """CONFIRMED transactions to ``destination`` in the last hour."""
    return int(
        tx.scalar(
            "SELECT COUNT(*) FROM transactions WHERE agent_id = :id AND destination = :dest"
            " AND status = 'CONFIRMED' AND confirmed_at > :since",
            {"id": agent_id, "dest": destination, "since": now - HOUR_S},
        )
    )


def top_destination_last_hour(tx: Tx, agent_id: str, *, now: int) -> tuple[str | None, int]:
    row = tx.one(
        "SELECT destination, COUNT(*) AS n FROM transactions WHERE agent_id = :id"
        " AND status = 'CONFIRMED' AND confirmed_at > :since"
        " GROUP BY destination ORDER BY n DESC, destination LIMIT 1",
        {"id": agent_id, "since": now - HOUR_S},
    )
    return (None, 0) if row is None else (row["destination"], int(row["n"]))
