"""``/v1/plan-groups``: create, read, generate (one at a time per group), inspect the lock."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from racefree import plans
from racefree.core import context
from racefree.core.clock import isoformat
from racefree.core.db import Tx
from racefree.core.errors import LockCode, RacefreeError
from racefree.http import conditional, schemas
from racefree.http.auth import OPERATOR_OR_SESSION, SESSION_AUTH_CODES, Caller, SessionPrincipal
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors
from racefree.operators.errors import AuthCode
from racefree.plans import Generator, Item, PlanGroup
from racefree.plans.errors import PlanCode
from racefree.plans.generation import lock_view
from racefree.plans.groups import MAX_ITEMS, MAX_UNITS

router = APIRouter(prefix="/v1/plan-groups", tags=["plans"], route_class=PipelineRoute)

MAX_WAIT_S = 300
# one errors() per route: codes sharing a status (409, 403) must all be documented
CREATE_ERRORS = errors(*SESSION_AUTH_CODES, PlanCode.QUOTA_EXCEEDED)
READ_ERRORS = errors(*SESSION_AUTH_CODES, PlanCode.PLAN_GROUP_NOT_FOUND)
GENERATE_ERRORS = errors(
    *SESSION_AUTH_CODES,
    PlanCode.PLAN_GROUP_NOT_FOUND,
    PlanCode.PLAN_GENERATION_IN_PROGRESS,
    LockCode.LOCK_TIMEOUT,
    LockCode.LOCK_LOST,
    PlanCode.QUOTA_EXCEEDED,
)


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    units: int = Field(ge=1, le=MAX_UNITS)


class PlanGroupIn(BaseModel):
    """The body's shape; the group's rules (period, unique names) are plans.validate's."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    start_date: date
    end_date: date
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEMS)


def get_generator(call: Call) -> Generator:
    """The runtime's one generator (and lease-lock instance), so in-process waiters are woken."""
    return call.runtime.plan_generator


def _actor(caller: Caller | None) -> str:
    if isinstance(caller, SessionPrincipal):
        return f"agent:{caller.agent_id}/session:{caller.session_id}"
    assert caller is not None, "plan routes authenticate an operator or a session"
    return f"operator:{caller.label}"


def _authorize(tx: Tx, group_id: str, caller: Caller | None) -> None:
    """Operators reach every group; a session only its own agent's (404 before 403)."""
    owner = plans.owner_of(tx, group_id)
    if isinstance(caller, SessionPrincipal) and owner != caller.agent_id:
        raise RacefreeError(
            AuthCode.FORBIDDEN, detail="this plan group belongs to another agent or to operators"
        )


def _group_body(group: PlanGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "agent_id": group.agent_id,
        "title": group.title,
        "start_date": group.start_date.isoformat(),
        "end_date": group.end_date.isoformat(),
        "items": [{"name": i.name, "units": i.units} for i in group.items],
        "generation": group.generation,
        "fencing_token": group.fencing_token,
        "generated_at": isoformat(group.generated_at),
        "generated_at_epoch": group.generated_at,
        "created_at": isoformat(group.created_at),
        "created_at_epoch": group.created_at,
    }


def _create(call: Call) -> Response:
    body: PlanGroupIn = call.body
    caller, runtime = call.caller, call.runtime
    agent_id = caller.agent_id if isinstance(caller, SessionPrincipal) else None
    items = [Item(i.name, i.units) for i in body.items]
    plans.validate(body.start_date, body.end_date, items)  # before the write transaction opens
    with runtime.db.write() as tx:
        group = plans.create(
            tx,
            title=body.title,
            start_date=body.start_date,
            end_date=body.end_date,
            items=items,
            agent_id=agent_id,
            actor=_actor(caller),
            now=runtime.clock.now(),
            quotas=runtime.plan_quotas,
        )
        headers = conditional.tag(tx, "plan_groups", group.id)
    headers["Location"] = f"/v1/plan-groups/{group.id}"
    return JSONResponse(_group_body(group), status_code=201, headers=headers)


@router.post(
    "",
    status_code=201,
    response_model=schemas.PlanGroupOut,
    responses=CREATE_ERRORS,
    openapi_extra=body_doc(PlanGroupIn),
    dependencies=[OPERATOR_OR_SESSION],
)
async def create_plan_group(request: Request) -> Response:
    """Create a plan group; a session's group is owned by its agent."""
    return await run(request, _create, body=PlanGroupIn)


@router.get(
    "/{group_id}",
    response_model=schemas.PlanGroupOut,
    responses=READ_ERRORS,
    dependencies=[OPERATOR_OR_SESSION],
)
async def get_plan_group(group_id: str, request: Request) -> Response:
    def serve(call: Call) -> Response:
        with call.runtime.db.read() as tx:
            _authorize(tx, group_id, call.caller)
            found = _group_body(plans.get(tx, group_id))
            return JSONResponse(found, headers=conditional.tag(tx, "plan_groups", group_id))

    return await run(request, serve, brief=True)


@router.get(
    "/{group_id}/plans",
    response_model=schemas.PlanList,
    responses=READ_ERRORS,
    dependencies=[OPERATOR_OR_SESSION],
)
async def list_plans(group_id: str, request: Request) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            _authorize(tx, group_id, call.caller)
            group = plans.get(tx, group_id)
            found = plans.plans(tx, group_id)
        return {
            "plan_group_id": group.id,
            "generation": group.generation,
            "total_units": sum(p.units for p in found),
            "plans": [
                {
                    "id": p.id,
                    "generation": p.generation,
                    "day": p.day,
                    "item": p.item,
                    "units": p.units,
                }
                for p in found
            ],
        }

    return await run(request, serve, brief=True)


@router.post(
    "/{group_id}/generate",
    response_model=schemas.Generated,
    responses=GENERATE_ERRORS,
    dependencies=[OPERATOR_OR_SESSION],
)
async def generate_plans(
    group_id: str,
    request: Request,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait")] = 0,
) -> Response:
    """Generate the group's plans; only one generation per group runs at a time.

    Busy: 409 PLAN_GENERATION_IN_PROGRESS (retryable, Retry-After) at once, or with
    ``wait`` > 0 after waiting up to that long, 409 LOCK_TIMEOUT."""

    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            # reads the owner only; the group is read under the lock
            _authorize(tx, group_id, call.caller)
        holder = f"{_actor(call.caller)}/{context.request_id.get() or '-'}"
        result = get_generator(call).generate(group_id, holder=holder, wait_s=wait)
        return {
            "plan_group_id": result.plan_group_id,
            "generation": result.generation,
            "plans_created": result.plans_created,
            "fencing_token": result.fencing_token,
            "lock_wait_ms": result.lock_wait_ms,
        }

    return await run(request, serve)


@router.get(
    "/{group_id}/lock",
    response_model=schemas.LockOut,
    responses=READ_ERRORS,
    dependencies=[OPERATOR_OR_SESSION],
)
async def plan_group_lock(group_id: str, request: Request) -> Response:
    """The group's generation lock: held or not, holder, since, expiry, fencing token."""

    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            _authorize(tx, group_id, call.caller)
        return lock_view(get_generator(call).locks, group_id)

    return await run(request, serve, brief=True)
