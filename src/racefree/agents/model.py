"""The agent as the API shows it: status, balance and derived owner state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from racefree.core.db import Row


class OwnerState(StrEnum):
    """Derived from the columns: no key -> NONE, key unverified -> GRACE, verified -> LOCKED."""

    NONE = "NONE"
    GRACE = "GRACE"
    LOCKED = "LOCKED"

    @classmethod
    def of(cls, public_key: str | None, verified: int) -> OwnerState:
        if public_key is None:
            return cls.NONE
        return cls.LOCKED if verified else cls.GRACE


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    status: str
    suspension_reason: str | None
    owner_public_key: str | None
    owner_state: OwnerState
    balance: int
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Row) -> Agent:
        return cls(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            suspension_reason=row["suspension_reason"],
            owner_public_key=row["owner_public_key"],
            owner_state=OwnerState.of(row["owner_public_key"], row["owner_verified"]),
            balance=int(row["balance"] or 0),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def owner(self) -> dict[str, Any]:
        return {"public_key": self.owner_public_key, "state": self.owner_state.value}


#: Agents joined with their account, for :meth:`Agent.from_row`.
SELECT_AGENT = (
    "SELECT a.id, a.name, a.status, a.suspension_reason, a.owner_public_key,"
    " a.owner_verified, a.created_at, a.updated_at, acc.balance"
    " FROM agents a LEFT JOIN accounts acc ON acc.agent_id = a.id"
)
