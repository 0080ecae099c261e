"""Locking the kill switch row ahead of a possible activation (PostgreSQL).

A transaction that may activate the switch part-way -- an AutoStop rule
evaluated while a transaction settles -- takes the row first, in the
activation's own lock order (kill switch, agents, sessions, transactions), so
it and an operator's activation queue behind each other instead of deadlocking
on the rows the cascade locks. SQLite has one writer: nothing to order.
"""

from __future__ import annotations

from racefree.core.db import Tx
from racefree.killswitch.status import GLOBAL_SCOPE


def lock_for_activation(tx: Tx) -> None:
    if not tx.is_sqlite:
        tx.execute(
            "SELECT 1 FROM kill_switch WHERE scope = :scope FOR NO KEY UPDATE",
            {"scope": GLOBAL_SCOPE},
        )
