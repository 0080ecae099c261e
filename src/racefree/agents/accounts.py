"""Agent accounts: integer balances in minor units, changed in SQL only."""

from __future__ import annotations

from racefree.agents.errors import AgentCode
from racefree.agents.machine import TERMINATED
from racefree.core import amounts, audit
from racefree.core.cas import cas_update
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError, invalid_field
from racefree.owners.errors import OwnerCode
from racefree.system.kill_switch import hold_normal

#: The ledger's debit: it matches only when the balance covers ``:amount`` (the CAS
#: that keeps a balance from going negative), for a statement that composes it.
DEBIT = (
    "UPDATE accounts SET balance = balance - :amount"
    " WHERE agent_id = :agent_id AND balance >= :amount"
)


def debit(tx: Tx, agent_id: str, amount: int) -> int | None:
    """Take ``amount`` from the agent's balance; the new balance, or None when it
    does not cover ``amount`` (nothing changed)."""
    balance: int | None = tx.scalar(
        f"{DEBIT} RETURNING balance", {"agent_id": agent_id, "amount": amount}
    )
    return balance


def deposit(tx: Tx, agent_id: str, amount: int, *, now: int, actor: str | None = None) -> int:
    """Add ``amount`` to the agent's balance; return the new balance.

    The first write is a guard on the agent row (not TERMINATED). On
    PostgreSQL it also takes the row lock, so a concurrent termination either
    commits first (and the deposit is refused) or waits for the deposit.
    """
    if not amounts.in_range(amount):
        raise invalid_field("amount", amounts.RANGE_MESSAGE)

    def classify(inner: Tx) -> RacefreeError:
        if inner.scalar("SELECT 1 FROM agents WHERE id = :id", {"id": agent_id}) is None:
            return RacefreeError(OwnerCode.AGENT_NOT_FOUND, details={"agent_id": agent_id})
        return RacefreeError(AgentCode.AGENT_TERMINATED, details={"agent_id": agent_id})

    hold_normal(tx)  # checked in the write itself: a request may pass the guard, then stop
    cas_update(
        tx,
        "UPDATE agents SET updated_at = :now WHERE id = :id AND status <> :terminated",
        {"now": now, "id": agent_id, "terminated": TERMINATED},
        classify=classify,
        returning="id",
    )
    balance: int | None = tx.scalar(
        "UPDATE accounts SET balance = balance + :amount"
        " WHERE agent_id = :id AND balance <= :kept - :amount RETURNING balance",
        {"amount": amount, "id": agent_id, "kept": amounts.MAX_KEPT},
    )
    if balance is None:  # the agent row is ours (guard above): only the ceiling refuses
        raise invalid_field("amount", f"the balance would exceed {amounts.MAX_KEPT}")
    audit.record(
        tx,
        "AGENT_DEPOSIT",
        at=now,
        actor=actor,
        agent_id=agent_id,
        details={"amount": str(amount), "balance": str(balance)},  # amounts are strings
    )
    return balance
