"""Rows for kill switch tests, inserted with plain SQL (the domains that own them are elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass, field

from racefree.core.db import Database, Tx
from racefree.core.ids import new_id

OPEN = ("PENDING", "QUEUED", "EXECUTING")
CLOSED = ("SUBMITTED", "CONFIRMED", "FAILED", "CANCELLED", "EXPIRED")


def agent(
    tx: Tx,
    *,
    status: str = "ACTIVE",
    suspension_reason: str | None = None,
    owner_public_key: str | None = None,
    now: int = 0,
) -> str:
    agent_id = new_id()
    tx.execute(
        "INSERT INTO agents (id, name, status, suspension_reason, owner_public_key,"
        " owner_verified, created_at, updated_at)"
        " VALUES (:id, :name, :status, :reason, :pk, 0, :now, :now)",
        {
            "id": agent_id,
            "name": f"agent-{agent_id[-6:]}",
            "status": status,
            "reason": suspension_reason,
            "pk": owner_public_key,
            "now": now,
        },
    )
    return agent_id


def session(
    tx: Tx,
    agent_id: str,
    *,
    revoked_at: int | None = None,
    revoke_reason: str | None = None,
    reserved: int = 0,
    spent: int = 0,
    now: int = 0,
) -> str:
    session_id = new_id()
    tx.execute(
        "INSERT INTO sessions (id, agent_id, token_hash, expires_at, expires_in, max_renewals,"
        " absolute_expires_at, revoked_at, revoke_reason, spent, reserved, created_at)"
        " VALUES (:id, :agent_id, :hash, :exp, 3600, 30, :abs, :revoked_at, :reason,"
        " :spent, :reserved, :now)",
        {
            "id": session_id,
            "agent_id": agent_id,
            "hash": f"h-{session_id}",
            "exp": now + 3600,
            "abs": now + 86400,
            "revoked_at": revoked_at,
            "reason": revoke_reason,
            "spent": spent,
            "reserved": reserved,
            "now": now,
        },
    )
    return session_id


def transaction(
    tx: Tx, agent_id: str, session_id: str, *, status: str, amount: int, now: int = 0
) -> str:
    tx_id = new_id()
    tx.execute(
        "INSERT INTO transactions (id, agent_id, session_id, type, amount, destination, status,"
        " tier, created_at, updated_at)"
        " VALUES (:id, :agent_id, :session_id, 'TRANSFER', :amount, 'dest', :status, 'INSTANT',"
        " :now, :now)",
        {
            "id": tx_id,
            "agent_id": agent_id,
            "session_id": session_id,
            "amount": amount,
            "status": status,
            "now": now,
        },
    )
    return tx_id


@dataclass
class World:
    """A populated system: what an activation must stop, and what it must leave alone."""

    active_agents: list[str] = field(default_factory=list)
    operator_suspended: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    live_sessions: list[str] = field(default_factory=list)
    revoked_sessions: list[str] = field(default_factory=list)
    open_transactions: list[str] = field(default_factory=list)
    closed_transactions: list[str] = field(default_factory=list)
    #: session id -> what its open transactions reserved
    reserved: dict[str, int] = field(default_factory=dict)


def world(db: Database, *, agents: int = 3, sessions_per_agent: int = 2, now: int = 0) -> World:
    """Agents with live sessions, open and finished transactions, plus bystanders."""
    w = World()
    with db.write() as tx:
        for _ in range(agents):
            a = agent(tx, now=now)
            w.active_agents.append(a)
            for _ in range(sessions_per_agent):
                amounts = [10, 20, 30]
                s = session(tx, a, reserved=sum(amounts) + 5, spent=100, now=now)
                w.live_sessions.append(s)
                w.reserved[s] = sum(amounts)
                for status, amount in zip(OPEN, amounts, strict=True):
                    w.open_transactions.append(
                        transaction(tx, a, s, status=status, amount=amount, now=now)
                    )
                for status in CLOSED:
                    w.closed_transactions.append(
                        transaction(tx, a, s, status=status, amount=7, now=now)
                    )
        held = agent(tx, status="SUSPENDED", suspension_reason="operator", now=now)
        w.operator_suspended.append(held)
        w.revoked_sessions.append(
            session(tx, held, revoked_at=now - 10, revoke_reason="operator", now=now)
        )
        w.terminated.append(agent(tx, status="TERMINATED", now=now))
    return w
