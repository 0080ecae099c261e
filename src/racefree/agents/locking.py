"""Locking an agent's row ahead of a change to it (PostgreSQL).

A transaction that may suspend the agent part-way -- an AutoStop rule
evaluated while one of its transactions settles, after the session and
transaction rows are locked -- takes the agent row first, in the order of the
kill switch's cascade (agents, sessions, transactions), so the two queue
behind each other instead of deadlocking. ``NO KEY UPDATE`` does not block the
foreign-key checks of rows that reference the agent. SQLite has one writer.
"""

from __future__ import annotations

from racefree.core.db import Tx


def lock(tx: Tx, agent_id: str) -> None:
    if not tx.is_sqlite:
        tx.execute("SELECT 1 FROM agents WHERE id = :id FOR NO KEY UPDATE", {"id": agent_id})
