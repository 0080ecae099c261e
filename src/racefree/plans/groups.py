"""Plan groups and their plans: creation, reads, and the group's lock key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from racefree.core import audit
from racefree.core.db import Row, Tx
from racefree.core.errors import RacefreeError, invalid_field
from racefree.core.ids import new_id
from racefree.plans.errors import PlanCode
from racefree.plans.spread import days_between
from racefree.system.kill_switch import hold_normal

MAX_DAYS = 366
MAX_ITEMS = 100
MAX_UNITS = 1_000_000


@dataclass(frozen=True, slots=True)
class Quotas:
    """``RACEFREE_PLAN_GROUPS_PER_AGENT`` and ``RACEFREE_PLANS_PER_GENERATION``."""

    groups_per_agent: int = 100
    plans_per_generation: int = 10_000


@dataclass(frozen=True, slots=True)
class Item:
    name: str
    units: int


@dataclass(frozen=True, slots=True)
class PlanGroup:
    id: str
    agent_id: str | None
    title: str
    start_date: date
    end_date: date
    items: tuple[Item, ...]
    generation: int
    fencing_token: int
    generated_at: int | None
    created_at: int

    @classmethod
    def from_row(cls, row: Row) -> PlanGroup:
        return cls(
            id=row["id"],
            agent_id=row["agent_id"],
            title=row["title"],
            start_date=date.fromisoformat(row["start_date"]),
            end_date=date.fromisoformat(row["end_date"]),
            items=tuple(Item(i["name"], int(i["units"])) for i in json.loads(row["items"])),
            generation=int(row["generation"]),
            fencing_token=int(row["fencing_token"]),
            generated_at=row["generated_at"],
            created_at=int(row["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    plan_group_id: str
    generation: int
    day: str
    item: str
    units: int


def iso_ms(epoch_ms: int | None) -> str | None:
    """ISO-8601 UTC with milliseconds (lease times are in ms)."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}Z"


def lock_key(group_id: str) -> str:
    """The key of the group's generation lock."""
    return f"plan-group:{group_id}"


def _invalid(message: str, loc: str) -> RacefreeError:
    return invalid_field(loc, message, detail=message)


def validate(start_date: date, end_date: date, items: list[Item]) -> None:
    """A group's rules, for every caller (the HTTP route calls this before its write)."""
    if end_date < start_date:
        raise _invalid("end_date must not be before start_date", "end_date")
    if days_between(start_date, end_date) > MAX_DAYS:
        raise _invalid(f"the period may span at most {MAX_DAYS} days", "end_date")
    if not 1 <= len(items) <= MAX_ITEMS:
        raise _invalid(f"between 1 and {MAX_ITEMS} items", "items")
    if len({i.name for i in items}) != len(items):
        raise _invalid("item names must be unique", "items")
    if any(not 1 <= i.units <= MAX_UNITS for i in items):
        raise _invalid(f"units must be between 1 and {MAX_UNITS}", "items")


def plan_rows(start_date: date, end_date: date, items: tuple[Item, ...] | list[Item]) -> int:
    """Plan rows one generation writes: an item has a row for each day it gets units."""
    days = days_between(start_date, end_date)
    return sum(min(i.units, days) for i in items)


def quota_error(quota: str, limit: int) -> RacefreeError:
    return RacefreeError(
        PlanCode.QUOTA_EXCEEDED,
        detail=f"the {quota} quota ({limit}) does not admit this",
        details={"quota": quota, "limit": limit},
    )


def check_size(
    start_date: date, end_date: date, items: tuple[Item, ...] | list[Item], limit: int
) -> None:
    """403 ``QUOTA_EXCEEDED`` when one generation would write more than ``limit`` plans."""
    if plan_rows(start_date, end_date, items) > limit:
        raise quota_error("plans_per_generation", limit)


# The per-agent count is a CAS: an upsert whose UPDATE matches only below the quota
# (on PostgreSQL concurrent upserts queue on the row and re-check the WHERE).
_COUNT_GROUP = (
    "INSERT INTO plan_group_quota (agent_id, plan_groups) VALUES (:agent_id, 1)"
    " ON CONFLICT (agent_id) DO UPDATE SET plan_groups = plan_group_quota.plan_groups + 1"
    " WHERE plan_group_quota.plan_groups < :limit"
)


def create(
    tx: Tx,
    *,
    title: str,
    start_date: date,
    end_date: date,
    items: list[Item],
    agent_id: str | None = None,
    actor: str | None = None,
    now: int,
    quotas: Quotas = Quotas(),
) -> PlanGroup:
    """Insert a plan group (no plans yet: generation 0) within the quotas.

    The agent's count is taken by CAS first (the transaction's first write),
    so of concurrent creations exactly as many as the quota admits succeed.
    """
    validate(start_date, end_date, items)
    check_size(start_date, end_date, items, quotas.plans_per_generation)
    hold_normal(tx)  # refused (503) unless the kill switch is NORMAL, in this transaction
    if agent_id is not None and not tx.execute(
        _COUNT_GROUP, {"agent_id": agent_id, "limit": quotas.groups_per_agent}
    ):
        raise quota_error("plan_groups_per_agent", quotas.groups_per_agent)
    group_id = new_id()
    row = tx.one(
        "INSERT INTO plan_groups (id, agent_id, title, start_date, end_date, items, created_at)"
        " VALUES (:id, :agent_id, :title, :start, :end, :items, :now) RETURNING *",
        {
            "id": group_id,
            "agent_id": agent_id,
            "title": title,
            "start": start_date.isoformat(),
            "end": end_date.isoformat(),
            "items": json.dumps([{"name": i.name, "units": i.units} for i in items]),
            "now": now,
        },
    )
    assert row is not None
    audit.record(
        tx,
        "PLAN_GROUP_CREATED",
        at=now,
        actor=actor,
        agent_id=agent_id,
        details={"plan_group_id": group_id, "title": title},
    )
    return PlanGroup.from_row(row)


def _not_found(group_id: str) -> RacefreeError:
    return RacefreeError(PlanCode.PLAN_GROUP_NOT_FOUND, details={"plan_group_id": group_id})


def get(tx: Tx, group_id: str) -> PlanGroup:
    row = tx.one("SELECT * FROM plan_groups WHERE id = :id", {"id": group_id})
    if row is None:
        raise _not_found(group_id)
    return PlanGroup.from_row(row)


def list_groups(tx: Tx, *, after_id: str | None = None, limit: int = 100) -> list[PlanGroup]:
    """Plan groups in creation (id) order after ``after_id``."""
    rows = tx.all(
        "SELECT * FROM plan_groups WHERE id > :after ORDER BY id LIMIT :limit",
        {"after": after_id or "", "limit": limit},
    )
    return [PlanGroup.from_row(r) for r in rows]


def owner_of(tx: Tx, group_id: str) -> str | None:
    """The agent that owns the group (``None``: created by an operator); 404 if none exists.

    Authorization reads only this, so it may run before the generation lock is taken."""
    row = tx.one("SELECT agent_id FROM plan_groups WHERE id = :id", {"id": group_id})
    if row is None:
        raise _not_found(group_id)
    owner: str | None = row["agent_id"]
    return owner


def plans(tx: Tx, group_id: str) -> list[Plan]:
    """The group's current plans, by day then item."""
    rows = tx.all(
        "SELECT id, plan_group_id, generation, day, item, units FROM plans"
        " WHERE plan_group_id = :id ORDER BY day, item",
        {"id": group_id},
    )
    return [Plan(**_plan_fields(r)) for r in rows]


def _plan_fields(row: Row) -> dict[str, Any]:
    return {**row, "generation": int(row["generation"]), "units": int(row["units"])}
