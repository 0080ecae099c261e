"""``/v1/auto-stop/rules`` and ``GET /v1/agents/{id}/auto-stop`` (operator; docs/events.md).

``POST`` sets the rule of a type for a scope (global, or one agent): 201 when
it created it, 200 when it replaced the existing one -- one rule per scope and
type. Every rule answers ``ETag: "<version>"``; ``PATCH``/``DELETE`` take
``If-Match`` into their CAS (412 ``PRECONDITION_FAILED``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from racefree import agents
from racefree.autostop import figures, rules
from racefree.autostop.errors import AutoStopCode
from racefree.autostop.rules import Action, Rule, RuleType
from racefree.client import models
from racefree.core.conditional import etag
from racefree.core.errors import GeneralCode
from racefree.http.auth import OPERATOR, OPERATOR_AUTH_CODES
from racefree.http.conditional import IfMatch, expected
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors
from racefree.operators import Operator
from racefree.owners.errors import OwnerCode

router = APIRouter(tags=["auto-stop"], route_class=PipelineRoute)

ID_PATTERN = r"^[0-9a-fA-F-]{36}$"
RuleId = Annotated[str, Path(pattern=ID_PATTERN, description="rule id")]
AgentId = Annotated[str, Path(min_length=1, max_length=36)]


class SetRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: RuleType
    params: dict[str, Any] = Field(default_factory=dict, description="per type; see docs/events.md")
    action: Action = Action.SUSPEND_AGENT
    agent_id: str | None = Field(default=None, max_length=36, description="omit: global")
    enabled: bool = True


class UpdateRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] | None = None
    action: Action | None = None
    enabled: bool | None = None


def _actor(operator: Operator) -> str:
    return f"operator:{operator.label}"


def _answer(rule: Rule, status_code: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(
        rule.as_dict(), status_code=status_code, headers={"ETag": etag(rule.version), **headers}
    )


@router.get(
    "/v1/auto-stop/rules",
    response_model=models.AutoStopRuleList,
    responses=errors(*OPERATOR_AUTH_CODES),
    dependencies=[OPERATOR],
)
async def list_rules(
    request: Request,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    scope: Annotated[Literal["global"] | None, Query()] = None,
) -> Response:
    """Every rule (global first), or one agent's own, or only the global ones."""

    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            found = rules.list_rules(
                tx, agent_id=agent_id, scope=rules.GLOBAL if scope == "global" else None
            )
        return {"rules": [r.as_dict() for r in found]}

    return await run(request, serve, brief=True)


@router.post(
    "/v1/auto-stop/rules",
    status_code=201,
    response_model=models.AutoStopRule,
    responses={
        200: {
            "model": models.AutoStopRule,
            "description": "the existing rule of this type was replaced",
        },
        **errors(*OPERATOR_AUTH_CODES, GeneralCode.VALIDATION_ERROR, OwnerCode.AGENT_NOT_FOUND),
    },
    openapi_extra=body_doc(SetRule),
    dependencies=[OPERATOR],
)
async def set_rule(request: Request) -> Response:
    """Set the rule of ``type`` for the agent (or globally), replacing any existing one."""
    return await run(request, _set, body=SetRule)


def _set(call: Call) -> JSONResponse:
    body: SetRule = call.body
    runtime = call.runtime
    params = rules.parse_params(body.type, body.params)
    with runtime.db.write() as tx:
        rule, created = rules.put(
            tx,
            agent_id=body.agent_id,
            rule_type=body.type,
            params=params,
            action=body.action,
            enabled=body.enabled,
            now=runtime.clock.now(),
            actor=_actor(call.operator),
        )
    return _answer(rule, 201 if created else 200, Location=f"/v1/auto-stop/rules/{rule.id}")


_ONE_RULE_ERRORS = (*OPERATOR_AUTH_CODES, AutoStopCode.AUTO_STOP_RULE_NOT_FOUND)


@router.get(
    "/v1/auto-stop/rules/{rule_id}",
    response_model=models.AutoStopRule,
    responses=errors(*_ONE_RULE_ERRORS),
    dependencies=[OPERATOR],
)
async def get_rule(request: Request, rule_id: RuleId) -> Response:
    def serve(call: Call) -> JSONResponse:
        with call.runtime.db.read() as tx:
            return _answer(rules.get(tx, rule_id))

    return await run(request, serve, brief=True)


@router.patch(
    "/v1/auto-stop/rules/{rule_id}",
    response_model=models.AutoStopRule,
    responses=errors(
        *_ONE_RULE_ERRORS,
        GeneralCode.VALIDATION_ERROR,
    ),
    openapi_extra=body_doc(UpdateRule),
    dependencies=[OPERATOR],
)
async def update_rule(request: Request, rule_id: RuleId, if_match: IfMatch = None) -> Response:
    def serve(call: Call) -> JSONResponse:
        body: UpdateRule = call.body
        precondition = expected(call.runtime, if_match)
        with call.runtime.db.write() as tx:
            rule = rules.update(
                tx,
                rule_id,
                now=call.runtime.clock.now(),
                actor=_actor(call.operator),
                expected=precondition,
                params=body.params,
                action=body.action,
                enabled=body.enabled,
            )
        return _answer(rule)

    return await run(request, serve, body=UpdateRule)


@router.delete(
    "/v1/auto-stop/rules/{rule_id}",
    response_model=models.Deleted,
    responses=errors(
        *_ONE_RULE_ERRORS,
    ),
    dependencies=[OPERATOR],
)
async def delete_rule(request: Request, rule_id: RuleId, if_match: IfMatch = None) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        precondition = expected(call.runtime, if_match)
        with call.runtime.db.write() as tx:
            rules.delete(
                tx,
                rule_id,
                now=call.runtime.clock.now(),
                actor=_actor(call.operator),
                expected=precondition,
            )
        return {"id": rule_id, "deleted": True}

    return await run(request, serve)


@router.get(
    "/v1/agents/{agent_id}/auto-stop",
    response_model=models.AgentAutoStop,
    responses=errors(*OPERATOR_AUTH_CODES, OwnerCode.AGENT_NOT_FOUND),
    dependencies=[OPERATOR],
)
async def agent_auto_stop(request: Request, agent_id: AgentId) -> Response:
    """The rules that apply to the agent (its own, else global) and the figures they read."""
    return await run(request, lambda call: _agent_auto_stop(call, agent_id), brief=True)


def _agent_auto_stop(call: Call, agent_id: str) -> dict[str, Any]:
    now = call.runtime.clock.now()
    with call.runtime.db.read() as tx:
        agents.get(tx, agent_id)
        effective = rules.effective(tx, agent_id)
        snapshot = figures.read(tx, agent_id, now=now)
        destination, count = figures.top_destination_last_hour(tx, agent_id, now=now)
        return {
            "agent_id": agent_id,
            "rules": [r.as_dict() for r in effective.values()],
            "figures": {
                "consecutive_failures": snapshot.consecutive_failures,
                "confirmed_today": str(snapshot.confirmed_today),
                "open_amount": str(figures.open_amount(tx, agent_id)),
                "transactions_last_hour": figures.transactions_last_hour(tx, agent_id, now=now),
                "top_destination_last_hour": destination,
                "top_destination_count": count,
            },
        }
