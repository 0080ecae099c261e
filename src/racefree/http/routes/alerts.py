"""``POST /v1/kill-switch/alerts``: Prometheus Alertmanager's webhook (operator; docs/events.md).

Under ``/v1/kill-switch``, so it is served whatever the switch's state.
Alertmanager's ``http_config`` sends the operator token as a bearer token. The
answer is 200 whenever the payload is valid -- including when the switch was
already engaged -- so Alertmanager does not retry what was handled.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from racefree.autostop import alerts
from racefree.client import models
from racefree.core.errors import GeneralCode
from racefree.http.auth import OPERATOR, OPERATOR_AUTH_CODES
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors

router = APIRouter(prefix="/v1/kill-switch", tags=["kill-switch"], route_class=PipelineRoute)

Text = Annotated[str, StringConstraints(max_length=2000)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Labels = Annotated[dict[LabelName, Text], Field(max_length=64)]


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: Text | None = None  # Alertmanager's field names
    endsAt: Text | None = None
    generatorURL: Text | None = None
    fingerprint: Annotated[str, StringConstraints(max_length=64)] | None = None


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook body (version 4); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    version: Text | None = None
    groupKey: Text | None = None
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: Text | None = None
    externalURL: Text | None = None
    alerts: list[AlertIn] = Field(max_length=1000)


@router.post(
    "/alerts",
    response_model=models.AlertsReceived,
    responses=errors(*OPERATOR_AUTH_CODES, GeneralCode.VALIDATION_ERROR),
    openapi_extra=body_doc(AlertmanagerPayload),
    dependencies=[OPERATOR],
)
async def receive_alerts(request: Request) -> Response:
    """Record every alert; a firing ``racefree_action="kill_switch"`` one engages the switch."""
    return await run(request, _receive, body=AlertmanagerPayload)


def _receive(call: Call) -> dict[str, Any]:
    body: AlertmanagerPayload = call.body
    runtime = call.runtime
    outcomes = alerts.receive(
        runtime.db,
        [
            alerts.Alert(
                status=a.status,
                labels=dict(a.labels),
                annotations=dict(a.annotations),
                fingerprint=a.fingerprint,
                starts_at=a.startsAt,
            )
            for a in body.alerts
        ],
        now=runtime.clock.now(),
        receiver=body.receiver,
    )
    activation = next((o.activation_id for o in outcomes if o.activation_id), None)
    return {
        "received": len(outcomes),
        "activated": activation is not None,
        "activation_id": activation,
        "outcomes": [
            {
                "alert": o.alert,
                "fingerprint": o.fingerprint,
                "outcome": o.outcome,
                "activation_id": o.activation_id,
            }
            for o in outcomes
        ],
    }
