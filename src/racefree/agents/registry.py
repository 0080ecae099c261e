"""Creating agents and reading them back."""

from __future__ import annotations

from racefree.agents.machine import ACTIVE
from racefree.agents.model import SELECT_AGENT, Agent
from racefree.core import audit
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError, invalid_field
from racefree.core.ids import new_id
from racefree.owners.errors import OwnerCode
from racefree.system.kill_switch import hold_normal


def create(tx: Tx, *, name: str, now: int, actor: str | None = None) -> Agent:
    """A new ACTIVE agent with an empty account and no owner.

    An owner key is set with :func:`racefree.owners.change_owner` in the same
    transaction (the owner columns' rules live there). Refused (503) unless the
    kill switch is NORMAL, which it stays until commit (:func:`hold_normal`), so
    an activation's cascade always reaches the new agent.
    """
    hold_normal(tx)
    if not name.strip():
        raise invalid_field("name", "the name must not be blank")
    agent_id = new_id()
    tx.execute(
        "INSERT INTO agents (id, name, status, owner_public_key, owner_verified, created_at,"
        " updated_at) VALUES (:id, :name, :status, NULL, 0, :now, :now)",
        {"id": agent_id, "name": name, "status": ACTIVE, "now": now},
    )
    tx.execute("INSERT INTO accounts (agent_id, balance) VALUES (:id, 0)", {"id": agent_id})
    audit.record(
        tx, "AGENT_CREATED", at=now, actor=actor, agent_id=agent_id, details={"name": name}
    )
    return get(tx, agent_id)


def get(tx: Tx, agent_id: str) -> Agent:
    """The agent ``agent_id``, or 404 ``AGENT_NOT_FOUND``."""
    row = tx.one(f"{SELECT_AGENT} WHERE a.id = :id", {"id": agent_id})
    if row is None:
        raise RacefreeError(OwnerCode.AGENT_NOT_FOUND, details={"agent_id": agent_id})
    return Agent.from_row(row)


def list_agents(
    tx: Tx, *, after_id: str | None = None, limit: int = 100, status: str | None = None
) -> list[Agent]:
    """Agents in creation (id) order, after ``after_id``, optionally of one status."""
    sql = f"{SELECT_AGENT} WHERE a.id > :after"
    if status is not None:
        sql += " AND a.status = :status"
    rows = tx.all(
        sql + " ORDER BY a.id LIMIT :limit",
        {"after": after_id or "", "status": status, "limit": limit},
    )
    return [Agent.from_row(r) for r in rows]


def count(tx: Tx, *, status: str | None = None) -> int:
    """How many agents there are (of ``status``, when given)."""
    sql = "SELECT COUNT(*) FROM agents"
    if status is not None:
        sql += " WHERE status = :status"
    return int(tx.scalar(sql, {"status": status}))
