"""Alertmanager in: alerts that may engage the kill switch (docs/events.md).

Every alert of an Alertmanager webhook payload is recorded (``ALERT_RECEIVED``,
actor ``alertmanager``). A *firing* alert whose labels include
``racefree_action="kill_switch"`` also tries the kill switch's
``NORMAL -> ACTIVATED`` CAS, first statement of the alert's transaction, with
the reason taken from its annotations. However many such alerts arrive -- in
one payload, in retries, in concurrent deliveries from an HA pair of
Alertmanagers -- the CAS lets exactly one activate; the others find the switch
engaged and are recorded as ``already_active``. That is a success for
Alertmanager (it must not retry), so nothing here is an error to the sender.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from racefree import killswitch
from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.db import Database, Tx
from racefree.core.errors import RacefreeError
from racefree.killswitch.errors import KillSwitchCode

ACTOR = "alertmanager"
ACTION_LABEL = "racefree_action"
KILL_SWITCH_ACTION = "kill_switch"
FIRING = "firing"
MAX_REASON = 1000

ACTIVATED = "activated"
ALREADY_ACTIVE = "already_active"
RECORDED = "recorded"


@dataclass(frozen=True, slots=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    fingerprint: str | None = None
    starts_at: str | None = None

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed alert")

    @property
    def stops_the_system(self) -> bool:
        return self.status == FIRING and self.labels.get(ACTION_LABEL) == KILL_SWITCH_ACTION

    def reason(self) -> str:
        said = self.annotations.get("summary") or self.annotations.get("description")
        text = f"alert {self.name}" + (f": {said}" if said else "")
        return text[:MAX_REASON]


@dataclass(frozen=True, slots=True)
class Outcome:
    alert: str
    fingerprint: str | None
    outcome: str
    activation_id: str | None = None


def receive(db: Database, alerts: list[Alert], *, now: int, receiver: str | None) -> list[Outcome]:
    """Record each alert (one transaction each) and act on the kill-switch ones."""
    return [_one(db, alert, now=now, receiver=receiver) for alert in alerts]


def _one(db: Database, alert: Alert, *, now: int, receiver: str | None) -> Outcome:
    with db.write() as tx:
        outcome, activation_id = RECORDED, None
        if alert.stops_the_system:
            outcome, activation_id = _try_activate(tx, alert, now)
        audit.record(
            tx,
            "ALERT_RECEIVED",
            at=now,
            severity=Severity.WARNING if alert.status == FIRING else Severity.INFO,
            actor=ACTOR,
            details=_details(alert, outcome, activation_id, receiver),
        )
    return Outcome(alert.name, alert.fingerprint, outcome, activation_id)


def _try_activate(tx: Tx, alert: Alert, now: int) -> tuple[str, str | None]:
    """The kill switch CAS (first statement of ``tx``); losing it is an expected outcome."""
    try:
        done = killswitch.activate(tx, alert.reason(), now=now, actor=ACTOR)
    except RacefreeError as exc:
        if exc.spec.domain != "SYSTEM":
            raise
        # engaged already (or recovering): nothing was written by the missed CAS
        if exc.code is KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE:
            return ALREADY_ACTIVE, None
        return f"not_activated:{exc.code.value}", None
    return ACTIVATED, done.activation_id


def _details(
    alert: Alert, outcome: str, activation_id: str | None, receiver: str | None
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "alertname": alert.name,
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "fingerprint": alert.fingerprint,
        "starts_at": alert.starts_at,
        "receiver": receiver,
        "outcome": outcome,
    }
    if activation_id is not None:
        details["activation_id"] = activation_id
    return details
