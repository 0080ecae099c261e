"""Typed models of every success response of the HTTP API (docs/http-api.md).

These are the one description of the API's response shapes: the client
parses answers with them, and a test holds the server to them (see
``tests/client/test_models.py``). They depend on pydantic only.

Amounts are strings of integers (minor units), as on the wire; times are
the server's ISO-8601 strings, with ``*_epoch`` companions where it sends them.
Unknown fields from a newer server are ignored, so an older client keeps working.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KillSwitchState = Literal["NORMAL", "ACTIVATED", "RECOVERING"]
AgentStatus = Literal["ACTIVE", "SUSPENDED", "TERMINATED"]
OwnerState = Literal["NONE", "GRACE", "LOCKED"]
TransactionStatus = Literal[
    "PENDING", "QUEUED", "EXECUTING", "SUBMITTED", "CONFIRMED", "FAILED", "CANCELLED", "EXPIRED"
]
Tier = Literal["INSTANT", "NOTIFY", "DELAY", "APPROVAL"]


class Model(BaseModel):
    """Base of every response model: immutable, tolerant of new fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# -- system -----------------------------------------------------------------------


class KillSwitchSummary(Model):
    state: KillSwitchState


class Health(Model):
    status: str
    version: str
    kill_switch: KillSwitchSummary


class Nonce(Model):
    nonce: str
    expires_at: str
    expires_at_epoch: int


# -- agents -----------------------------------------------------------------------


class Owner(Model):
    public_key: str | None
    state: OwnerState


class Agent(Model):
    id: str
    name: str
    status: AgentStatus
    suspension_reason: str | None
    balance: str
    owner: Owner
    created_at: str | None
    updated_at: str | None


class AgentPage(Model):
    agents: list[Agent]
    next_after_id: str | None


class Balance(Model):
    agent_id: str
    balance: str


# -- sessions ---------------------------------------------------------------------


class Constraints(Model):
    max_amount_per_tx: str | None = None
    max_total_amount: str | None = None
    max_transactions: int | None = None


class Session(Model):
    """A session object: never a token or a hash."""

    session_id: str
    agent_id: str
    expires_at: str | None
    expires_at_epoch: int
    expires_in: int
    absolute_expires_at: str | None
    absolute_expires_at_epoch: int
    renewal_count: int
    max_renewals: int
    last_renewed_at: str | None
    revoked_at: str | None
    revoke_reason: str | None
    constraints: Constraints
    spent: str
    reserved: str
    tx_count: int
    created_at: str | None


class SessionWithToken(Session):
    """A session as opened or renewed: its token is in this answer only."""

    token: str = Field(repr=False)


class SessionPage(Model):
    sessions: list[Session]
    next_after_id: str | None


class RevokedSession(Model):
    session_id: str
    revoked_at: str | None
    revoke_reason: str | None


# -- operators --------------------------------------------------------------------


class Operator(Model):
    """An operator token as listed: never the token or its hash."""

    id: str
    label: str
    created_at: str | None


class OperatorList(Model):
    operators: list[Operator]


class CreatedOperator(Operator):
    """A new operator token: the token is in this answer only."""

    token: str = Field(repr=False)


class RevokedOperator(Model):
    id: str
    label: str
    revoked_at: str | None


# -- kill switch ------------------------------------------------------------------


class KillSwitch(Model):
    state: KillSwitchState
    version: int
    activation_id: str | None
    reason: str | None
    actor: str | None
    activated_at: str | None
    activated_at_epoch: int | None
    recovery_eligible_at: str | None
    recovery_eligible_at_epoch: int | None
    master_password_locked: bool


class Activation(Model):
    state: KillSwitchState
    activation_id: str
    activated_at: str | None
    activated_at_epoch: int | None
    sessions_revoked: int
    transactions_cancelled: int
    agents_suspended: int
    duration_ms: float


class RecoveryStarted(Model):
    state: KillSwitchState
    recovery_eligible_at: str | None
    recovery_eligible_at_epoch: int | None
    wait_seconds: int


class RecoveryCompleted(Model):
    state: KillSwitchState
    agents_reactivated: int


class RecoveryAborted(Model):
    state: KillSwitchState


# -- transactions -----------------------------------------------------------------


class Transaction(Model):
    transaction_id: str
    agent_id: str
    session_id: str
    type: str
    amount: str
    destination: str
    status: TransactionStatus
    tier: Tier
    error: str | None
    attempts: int
    execute_after: str | None
    expires_at: str | None
    created_at: str | None
    updated_at: str | None
    submitted_at: str | None
    confirmed_at: str | None


class TransactionPage(Model):
    transactions: list[Transaction]
    next_after_id: str | None


# -- plan groups ------------------------------------------------------------------


class PlanItem(Model):
    name: str
    units: int


class PlanGroup(Model):
    id: str
    agent_id: str | None
    title: str
    start_date: date
    end_date: date
    items: list[PlanItem]
    generation: int
    fencing_token: int
    generated_at: str | None
    generated_at_epoch: int | None
    created_at: str | None
    created_at_epoch: int


class Plan(Model):
    id: str
    generation: int
    day: str
    item: str
    units: int


class PlanList(Model):
    plan_group_id: str
    generation: int
    total_units: int
    plans: list[Plan]


class Generation(Model):
    plan_group_id: str
    generation: int
    plans_created: int
    fencing_token: int
    lock_wait_ms: int


class PlanLock(Model):
    held: bool
    holder: str | None
    acquired_at: str | None
    expires_at: str | None
    acquired_at_epoch: int | None
    expires_at_epoch: int | None
    fencing_token: int | None


# -- audit ------------------------------------------------------------------------


class AuditEntry(Model):
    id: int
    at: str  # RFC 3339 UTC with milliseconds
    at_epoch: int
    event_type: str
    severity: str
    actor: str | None
    agent_id: str | None
    session_id: str | None
    transaction_id: str | None
    details: dict[str, Any]
    request_id: str | None


class AuditPage(Model):
    entries: list[AuditEntry]
    next_after_id: int


# -- probes (issue 15) -------------------------------------------------------------------


class Live(Model):
    status: Literal["alive"]


class Ready(Model):
    status: Literal["ready"]
    schema_revision: str


# -- events, webhooks, auto-stop, alerts (docs/events.md) ---------------------------
#
# The server documents these routes with these very classes (``response_model=``
# in racefree.http.routes), so the OpenAPI document, the client and the test that
# holds every answer to its model (tests/client/test_models.py) share one shape.

Severity = Literal["info", "warning", "critical"]
AutoStopRuleType = Literal[
    "CONSECUTIVE_FAILURES", "DAILY_LIMIT", "HOURLY_RATE", "TIME_RESTRICTION", "ANOMALY_PATTERN"
]
AutoStopAction = Literal["WARN", "SUSPEND_AGENT", "KILL_SWITCH"]
WebhookStatus = Literal["ACTIVE", "DISABLED"]
DeliveryOutcome = Literal["SUCCEEDED", "FAILED"]
AlertOutcomeName = Literal["activated", "already_active", "recorded"]


class Deleted(Model):
    """A deleted auto-stop rule or webhook."""

    id: str
    deleted: bool


class EventData(Model):
    severity: Severity
    actor: str | None
    agent_id: str | None
    session_id: str | None
    transaction_id: str | None
    request_id: str | None
    details: dict[str, Any]


class Event(Model):
    """One outbox event: a webhook's body, a stream frame's ``data:``."""

    id: int
    type: str
    occurred_at: str | None
    data: EventData


class Webhook(Model):
    """A webhook: never its secret."""

    id: str
    url: str
    event_types: list[str]
    status: WebhookStatus
    version: int
    failures: int
    next_attempt_at: str | None
    disabled_reason: str | None
    created_at: str | None
    created_at_epoch: int
    updated_at: str | None
    updated_at_epoch: int
    last_event_id: int


class CreatedWebhook(Webhook):
    """A webhook as created: its signing secret (``whsec_...``) is in this answer only."""

    secret: str = Field(repr=False, description="the signing secret, shown only in this answer")


class WebhookList(Model):
    webhooks: list[Webhook]


class WebhookDelivery(Model):
    """One delivery attempt of one event to one webhook."""

    id: str
    webhook_id: str
    event_id: int
    event_type: str
    attempt: int
    outcome: DeliveryOutcome
    status_code: int | None
    error: str | None
    duration_ms: int
    holder: str
    started_at: str  # RFC 3339 UTC with milliseconds
    started_at_epoch: int


class DeliveryPage(Model):
    """Attempts, newest first; ``next_before`` pages on (``None`` on the last page)."""

    deliveries: list[WebhookDelivery]
    next_before: str | None


class AutoStopRule(Model):
    id: str
    agent_id: str | None
    scope: Literal["global", "agent"]
    type: AutoStopRuleType
    params: dict[str, Any]
    action: AutoStopAction
    enabled: bool
    version: int


class AutoStopRuleList(Model):
    rules: list[AutoStopRule]


class AutoStopFigures(Model):
    """What the agent's rules read, now."""

    consecutive_failures: int
    confirmed_today: str
    open_amount: str
    transactions_last_hour: int
    top_destination_last_hour: str | None
    top_destination_count: int


class AgentAutoStop(Model):
    """The rules that apply to an agent (its own per type, else the global one) and its figures."""

    agent_id: str
    rules: list[AutoStopRule]
    figures: AutoStopFigures


class AlertOutcome(Model):
    alert: str
    fingerprint: str | None
    outcome: AlertOutcomeName
    activation_id: str | None


class AlertsReceived(Model):
    received: int
    activated: bool
    activation_id: str | None
    outcomes: list[AlertOutcome]
