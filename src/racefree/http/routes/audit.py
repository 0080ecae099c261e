"""``GET /v1/audit-log``: the append-only log, paged by id (operator)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from racefree.core import audit
from racefree.core.clock import isoformat
from racefree.http.auth import OPERATOR, OPERATOR_ERRORS
from racefree.http.paging import Limit, next_after_id
from racefree.http.pipeline import Call, PipelineRoute, run

router = APIRouter(prefix="/v1", tags=["audit"], route_class=PipelineRoute)


#: Audit ids are 64-bit integers on both engines; a larger cursor is a 400, never a 500.
MAX_ID = 2**63 - 1


class AuditEntryOut(BaseModel):
    id: int
    at: str = Field(description="RFC 3339 UTC with milliseconds")
    at_epoch: int
    event_type: str
    severity: str
    actor: str | None
    agent_id: str | None
    session_id: str | None
    transaction_id: str | None
    details: dict[str, Any]
    request_id: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after_id: int


def entry_out(entry: audit.AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(**{**asdict(entry), "at": isoformat(entry.at), "at_epoch": entry.at})


@router.get(
    "/audit-log", response_model=AuditPage, responses=OPERATOR_ERRORS, dependencies=[OPERATOR]
)
async def audit_log(
    request: Request,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Limit = 100,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            found = audit.entries(
                tx, after_id=after_id, limit=limit, event_type=event_type, agent_id=agent_id
            )
        page = AuditPage(
            entries=[entry_out(e) for e in found],
            next_after_id=next_after_id(found, after_id),
        )
        return page.model_dump(mode="json")

    return await run(request, serve, brief=True)
