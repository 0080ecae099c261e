"""``/v1/plan-groups``: create, read, generate (one at a time per group), inspect the lock."""

from __future__ import annotations

import threading
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from racefree import plans
from racefree.core import context
from racefree.core.clock import isoformat
from racefree.core.errors import ErrorCode
from racefree.core.locks import LeaseLocks
from racefree.http.auth import OPERATOR_ERRORS, OperatorDep
from racefree.http.deps import RuntimeDep
from racefree.http.problems import errors
from racefree.plans import Generator, Item, PlanGroup
from racefree.plans.generation import lock_view
from racefree.plans.groups import MAX_DAYS, MAX_ITEMS, MAX_UNITS
from racefree.plans.spread import days_between
from racefree.runtime import Runtime

router = APIRouter(prefix="/v1/plan-groups", tags=["plans"])

MAX_WAIT_S = 300
NOT_FOUND = errors(ErrorCode.PLAN_GROUP_NOT_FOUND)


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    units: int = Field(ge=1, le=MAX_UNITS)


class PlanGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    start_date: date
    end_date: date
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _period_and_names(self) -> PlanGroupIn:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if days_between(self.start_date, self.end_date) > MAX_DAYS:
            raise ValueError(f"the period may span at most {MAX_DAYS} days")
        if len({i.name for i in self.items}) != len(self.items):
            raise ValueError("item names must be unique")
        return self


_generator_lock = threading.Lock()


def get_generator(request: Request, runtime: RuntimeDep) -> Generator:
    """One generator (and lease-lock instance) per app, so in-process waiters are woken."""
    with _generator_lock:
        generator: Generator | None = getattr(request.app.state, "plan_generator", None)
        if generator is None:
            generator = _new_generator(runtime)
            request.app.state.plan_generator = generator
        return generator


def _new_generator(runtime: Runtime) -> Generator:
    settings = runtime.settings
    return Generator(
        runtime.db,
        runtime.clock,
        LeaseLocks(runtime.db, runtime.clock),
        ttl_s=settings.lock_ttl_s,
        delay_ms=settings.plan_generation_delay_ms,
    )


GeneratorDep = Annotated[Generator, Depends(get_generator)]


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


@router.post("", status_code=201, responses=OPERATOR_ERRORS)
def create_plan_group(
    body: PlanGroupIn, runtime: RuntimeDep, operator: OperatorDep
) -> dict[str, Any]:
    with runtime.db.write() as tx:
        group = plans.create(
            tx,
            title=body.title,
            start_date=body.start_date,
            end_date=body.end_date,
            items=[Item(i.name, i.units) for i in body.items],
            actor=f"operator:{operator.label}",
            now=runtime.clock.now(),
        )
    return _group_body(group)


@router.get("/{group_id}", responses={**OPERATOR_ERRORS, **NOT_FOUND})
def get_plan_group(group_id: str, runtime: RuntimeDep, operator: OperatorDep) -> dict[str, Any]:
    with runtime.db.read() as tx:
        return _group_body(plans.get(tx, group_id))


@router.get("/{group_id}/plans", responses={**OPERATOR_ERRORS, **NOT_FOUND})
def list_plans(group_id: str, runtime: RuntimeDep, operator: OperatorDep) -> dict[str, Any]:
    with runtime.db.read() as tx:
        group = plans.get(tx, group_id)
        found = plans.plans(tx, group_id)
    return {
        "plan_group_id": group.id,
        "generation": group.generation,
        "total_units": sum(p.units for p in found),
        "plans": [
            {"id": p.id, "generation": p.generation, "day": p.day, "item": p.item, "units": p.units}
            for p in found
        ],
    }


@router.post(
    "/{group_id}/generate",
    responses={
        **OPERATOR_ERRORS,
        **errors(
            ErrorCode.PLAN_GROUP_NOT_FOUND,
            ErrorCode.PLAN_GENERATION_IN_PROGRESS,
            ErrorCode.LOCK_TIMEOUT,
            ErrorCode.LOCK_LOST,
        ),
    },
)
def generate_plans(
    group_id: str,
    runtime: RuntimeDep,
    generator: GeneratorDep,
    operator: OperatorDep,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait")] = 0,
) -> dict[str, Any]:
    """Generate the group's plans; only one generation per group runs at a time.

    Busy: 409 PLAN_GENERATION_IN_PROGRESS (retryable, Retry-After) at once, or with
    ``wait`` > 0 after waiting up to that long, 409 LOCK_TIMEOUT."""
    with runtime.db.read() as tx:
        plans.owner_of(tx, group_id)  # 404 before locking; the group itself is read under it
    holder = f"operator:{operator.label}/{context.request_id.get() or '-'}"
    result = generator.generate(group_id, holder=holder, wait_s=wait)
    return {
        "plan_group_id": result.plan_group_id,
        "generation": result.generation,
        "plans_created": result.plans_created,
        "fencing_token": result.fencing_token,
        "lock_wait_ms": result.lock_wait_ms,
    }


@router.get("/{group_id}/lock", responses={**OPERATOR_ERRORS, **NOT_FOUND})
def plan_group_lock(
    group_id: str, runtime: RuntimeDep, generator: GeneratorDep, operator: OperatorDep
) -> dict[str, Any]:
    with runtime.db.read() as tx:
        plans.owner_of(tx, group_id)
    return lock_view(generator.locks, group_id)
