"""Typed response bodies of the routes that build theirs as dicts (a typed model
for every success response).

``extra="forbid"``: a field a route returns but a model lacks fails loudly (a 500
in the tests) instead of vanishing from the answer. Times are RFC 3339 strings
with milliseconds, ``*_epoch`` their epoch seconds, amounts strings of integers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Time = str | None


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Owner(_Out):
    public_key: str | None
    state: str = Field(description="NONE, GRACE or LOCKED")


class AgentOut(_Out):
    id: str
    name: str
    status: str = Field(description="ACTIVE, SUSPENDED or TERMINATED")
    suspension_reason: str | None
    balance: str = Field(examples=["1000"])
    owner: Owner
    created_at: Time
    updated_at: Time


class AgentList(_Out):
    agents: list[AgentOut]
    next_after_id: str | None


class Balance(_Out):
    agent_id: str
    balance: str = Field(examples=["1000"])


class Constraints(_Out):
    max_amount_per_tx: str | None
    max_total_amount: str | None
    max_transactions: int | None


class SessionOut(_Out):
    session_id: str
    agent_id: str
    expires_at: Time
    expires_at_epoch: int
    expires_in: int
    absolute_expires_at: Time
    absolute_expires_at_epoch: int
    renewal_count: int
    max_renewals: int
    last_renewed_at: Time
    revoked_at: Time
    revoke_reason: str | None
    constraints: Constraints
    spent: str
    reserved: str
    tx_count: int
    created_at: Time


class SessionWithToken(SessionOut):
    token: str = Field(description="the session's bearer token; shown in this response only")


class SessionList(_Out):
    sessions: list[SessionOut]
    next_after_id: str | None


class RevokedSession(_Out):
    session_id: str
    revoked_at: Time
    revoke_reason: str | None


class KillSwitchOut(_Out):
    state: str = Field(description="NORMAL, ACTIVATED or RECOVERING")
    version: int
    activation_id: str | None
    reason: str | None
    actor: str | None
    activated_at: Time
    activated_at_epoch: int | None
    recovery_eligible_at: Time
    recovery_eligible_at_epoch: int | None
    master_password_locked: bool


class Activation(_Out):
    state: str
    activation_id: str | None
    activated_at: Time
    activated_at_epoch: int | None
    sessions_revoked: int
    transactions_cancelled: int
    agents_suspended: int
    duration_ms: float


class RecoveryStarted(_Out):
    state: str
    recovery_eligible_at: Time
    recovery_eligible_at_epoch: int | None
    wait_seconds: int


class RecoveryCompleted(_Out):
    state: str
    agents_reactivated: int


class RecoveryAborted(_Out):
    state: str


class Nonce(_Out):
    nonce: str
    expires_at: Time
    expires_at_epoch: int


class PlanItem(_Out):
    name: str
    units: int


class PlanGroupOut(_Out):
    id: str
    agent_id: str | None
    title: str
    start_date: str
    end_date: str
    items: list[PlanItem]
    generation: int
    fencing_token: int | None
    generated_at: Time
    generated_at_epoch: int | None
    created_at: Time
    created_at_epoch: int


class PlanOut(_Out):
    id: str
    generation: int
    day: str
    item: str
    units: int


class PlanList(_Out):
    plan_group_id: str
    generation: int
    total_units: int
    plans: list[PlanOut]


class Generated(_Out):
    plan_group_id: str
    generation: int
    plans_created: int
    fencing_token: int
    lock_wait_ms: float


class LockOut(_Out):
    held: bool
    holder: str | None
    acquired_at: Time
    expires_at: Time
    acquired_at_epoch: int | None
    expires_at_epoch: int | None
    fencing_token: int | None


def loose(model: type[BaseModel]) -> dict[str, Any]:
    """For documentation only: ``model``'s JSON schema."""
    return model.model_json_schema()
