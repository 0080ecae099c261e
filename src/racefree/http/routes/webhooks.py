"""``/v1/webhooks``: where events are sent (operator; docs/events.md).

``POST`` answers 201 with the signing ``secret`` (``whsec_...``), shown only
then (``Cache-Control: no-store``). Every webhook answers ``ETag: "<version>"``;
``PATCH`` and ``DELETE`` take ``If-Match`` into their CAS (412
``PRECONDITION_FAILED`` on a mismatch). Targets must be in
``RACEFREE_WEBHOOK_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from racefree.client import models
from racefree.core.conditional import etag
from racefree.core.errors import GeneralCode
from racefree.events import secrets, targets, webhooks
from racefree.events.errors import EventCode
from racefree.events.webhooks import Webhook
from racefree.http.auth import OPERATOR, OPERATOR_AUTH_CODES
from racefree.http.conditional import IfMatch, expected
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors
from racefree.operators import Operator
from racefree.plans.groups import iso_ms
from racefree.runtime import Runtime

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=PipelineRoute)

EVENT_TYPE = re.compile(r"^(\*|[A-Z][A-Z0-9_]{0,63})$")
ID_PATTERN = r"^[0-9a-fA-F-]{36}$"
WebhookId = Annotated[str, Path(pattern=ID_PATTERN, description="webhook id")]


def _check_types(value: list[str]) -> list[str]:
    bad = [t for t in value if not EVENT_TYPE.match(t)]
    if bad:
        raise ValueError(f"not event types: {bad[:5]} (A-Z, 0-9, _; or '*' for every type)")
    return sorted(set(value))


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=targets.MAX_URL_LENGTH)
    event_types: list[str] = Field(min_length=1, max_length=100, description="'*' for all")

    _types = field_validator("event_types")(_check_types)


class UpdateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=targets.MAX_URL_LENGTH)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=100)
    status: Literal["ACTIVE", "DISABLED"] | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_types(value)


def _answer(
    hook: Webhook, body: dict[str, Any], status_code: int = 200, **headers: str
) -> JSONResponse:
    return JSONResponse(
        body, status_code=status_code, headers={"ETag": etag(hook.version), **headers}
    )


def _actor(operator: Operator) -> str:
    return f"operator:{operator.label}"


def _allowed(runtime: Runtime) -> frozenset[str]:
    return targets.allowed_hosts(runtime.settings.webhook_allowed_hosts)


@router.post(
    "",
    status_code=201,
    response_model=models.CreatedWebhook,
    responses=errors(*OPERATOR_AUTH_CODES, GeneralCode.VALIDATION_ERROR),
    openapi_extra=body_doc(CreateWebhook),
    dependencies=[OPERATOR],
)
async def create_webhook(request: Request) -> Response:
    """Register a target; the answer carries its signing secret, never shown again."""
    return await run(request, _create, body=CreateWebhook)


def _create(call: Call) -> JSONResponse:
    body: CreateWebhook = call.body
    runtime = call.runtime
    targets.check(body.url, _allowed(runtime))
    now = runtime.clock.now()
    with runtime.db.write() as tx:
        box = secrets.box(tx, runtime.settings, now=now)
        hook, secret = webhooks.create(
            tx,
            box,
            url=body.url,
            event_types=body.event_types,
            now=now,
            actor=_actor(call.operator),
        )
    return _answer(
        hook,
        {**hook.public(), "secret": secret},
        201,
        Location=f"/v1/webhooks/{hook.id}",
        **{"Cache-Control": "no-store"},
    )


@router.get(
    "",
    response_model=models.WebhookList,
    responses=errors(*OPERATOR_AUTH_CODES),
    dependencies=[OPERATOR],
)
async def list_webhooks(request: Request) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            return {"webhooks": [h.public() for h in webhooks.list_all(tx)]}

    return await run(request, serve, brief=True)


@router.get(
    "/{webhook_id}",
    response_model=models.Webhook,
    responses=errors(*OPERATOR_AUTH_CODES, EventCode.WEBHOOK_NOT_FOUND),
    dependencies=[OPERATOR],
)
async def get_webhook(request: Request, webhook_id: WebhookId) -> Response:
    def serve(call: Call) -> JSONResponse:
        with call.runtime.db.read() as tx:
            hook = webhooks.get(tx, webhook_id)
        return _answer(hook, hook.public())

    return await run(request, serve, brief=True)


@router.patch(
    "/{webhook_id}",
    response_model=models.Webhook,
    responses=errors(
        *OPERATOR_AUTH_CODES,
        GeneralCode.VALIDATION_ERROR,
        EventCode.WEBHOOK_NOT_FOUND,
    ),
    openapi_extra=body_doc(UpdateWebhook),
    dependencies=[OPERATOR],
)
async def update_webhook(
    request: Request, webhook_id: WebhookId, if_match: IfMatch = None
) -> Response:
    """Change the target, the types, or enable/disable (enabling resets the failure count)."""

    def serve(call: Call) -> JSONResponse:
        body: UpdateWebhook = call.body
        runtime = call.runtime
        if body.url is not None:
            targets.check(body.url, _allowed(runtime))
        precondition = expected(call.runtime, if_match)
        with runtime.db.write() as tx:
            hook = webhooks.update(
                tx,
                webhook_id,
                now=runtime.clock.now(),
                actor=_actor(call.operator),
                expected=precondition,
                url=body.url,
                event_types=body.event_types,
                status=body.status,
            )
        return _answer(hook, hook.public())

    return await run(request, serve, body=UpdateWebhook)


@router.delete(
    "/{webhook_id}",
    response_model=models.Deleted,
    responses=errors(*OPERATOR_AUTH_CODES, EventCode.WEBHOOK_NOT_FOUND),
    dependencies=[OPERATOR],
)
async def delete_webhook(
    request: Request, webhook_id: WebhookId, if_match: IfMatch = None
) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        precondition = expected(call.runtime, if_match)
        with call.runtime.db.write() as tx:
            webhooks.delete(
                tx,
                webhook_id,
                now=call.runtime.clock.now(),
                actor=_actor(call.operator),
                expected=precondition,
            )
        return {"id": webhook_id, "deleted": True}

    return await run(request, serve)


def _delivery(attempt: webhooks.Delivery) -> dict[str, Any]:
    """An attempt as the API shows it: ``started_at`` RFC 3339, ``started_at_epoch`` seconds."""
    shown = asdict(attempt)
    started_at_ms = shown.pop("started_at_ms")
    return {
        **shown,
        "started_at": iso_ms(started_at_ms),
        "started_at_epoch": started_at_ms // 1000,
    }


@router.get(
    "/{webhook_id}/deliveries",
    response_model=models.DeliveryPage,
    responses=errors(*OPERATOR_AUTH_CODES, EventCode.WEBHOOK_NOT_FOUND),
    dependencies=[OPERATOR],
)
async def list_deliveries(
    request: Request,
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> Response:
    """Attempts, newest first; page with ``before`` (the last id of the previous page)."""

    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            found = webhooks.deliveries(tx, webhook_id, limit=limit, before=before)
        return {
            "deliveries": [_delivery(d) for d in found],
            "next_before": found[-1].id if len(found) == limit else None,
        }

    return await run(request, serve, brief=True)
