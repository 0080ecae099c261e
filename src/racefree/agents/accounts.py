"""Agent accounts: integer balances in minor units, changed in SQL only."""

from __future__ import annotations

from racefree.agents.machine import TERMINATED
from racefree.core import audit
from racefree.core.cas import cas_update
from racefree.core.db import Tx
from racefree.core.errors import ErrorCode, RacefreeError, invalid_field
from racefree.system.kill_switch import hold_normal

#: Deposits above this are refused (keeps balances far from BIGINT overflow).
MAX_DEPOSIT = 10**15


def deposit(tx: Tx, agent_id: str, amount: int, *, now: int, actor: str | None = None) -> int:
    """Add ``amount`` to the agent's balance; return the new balance.

    The first write is a guard on the agent row (not TERMINATED). On
    PostgreSQL it also takes the row lock, so a concurrent termination either
    commits first (and the deposit is refused) or waits for the deposit.
    """
    if not 0 < amount <= MAX_DEPOSIT:
        raise invalid_field("amount", f"the amount must be between 1 and {MAX_DEPOSIT}")

    def classify(inner: Tx) -> RacefreeError:
        if inner.scalar("SELECT 1 FROM agents WHERE id = :id", {"id": agent_id}) is None:
            return RacefreeError(ErrorCode.AGENT_NOT_FOUND, details={"agent_id": agent_id})
        return RacefreeError(ErrorCode.AGENT_TERMINATED, details={"agent_id": agent_id})

    hold_normal(tx)  # checked in the write itself: a request may pass the guard, then stop
    cas_update(
        tx,
        "UPDATE agents SET updated_at = :now WHERE id = :id AND status <> :terminated",
        {"now": now, "id": agent_id, "terminated": TERMINATED},
        classify=classify,
        returning="id",
    )
    balance: int = tx.scalar(
        "UPDATE accounts SET balance = balance + :amount WHERE agent_id = :id RETURNING balance",
        {"amount": amount, "id": agent_id},
    )
    audit.record(
        tx,
        "AGENT_DEPOSIT",
        at=now,
        actor=actor,
        agent_id=agent_id,
        details={"amount": str(amount), "balance": str(balance)},  # amounts are strings
    )
    return balance
