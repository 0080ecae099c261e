"""``GET /v1/audit-log``: the append-only log, paged by id (operator)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from racefree.core import audit
from racefree.core.clock import isoformat
from racefree.http.auth import OPERATOR, OPERATOR_ERRORS
from racefree.http.pipeline import Call, PipelineRoute, run

router = APIRouter(prefix="/v1", tags=["audit"], route_class=PipelineRoute)


#: Audit ids are 64-bit integers on both engines; a larger cursor is a 400, never a 500.
MAX_ID = 2**63 - 1


@router.get(
    "/audit-log", response_model=dict[str, Any], responses=OPERATOR_ERRORS, dependencies=[OPERATOR]
)
async def audit_log(
    request: Request,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            found = audit.entries(
                tx, after_id=after_id, limit=limit, event_type=event_type, agent_id=agent_id
            )
        return {
            "entries": [{**asdict(e), "at_iso": isoformat(e.at)} for e in found],
            "next_after_id": found[-1].id if found else after_id,
        }

    return await run(request, serve, reads_only=True)
