"""``GET /v1/audit-log``: the append-only log, paged by id (operator)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from racefree.core import audit
from racefree.core.clock import isoformat
from racefree.http.auth import OPERATOR_ERRORS, OperatorDep
from racefree.http.deps import RuntimeDep

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit-log", responses=OPERATOR_ERRORS)
def audit_log(
    runtime: RuntimeDep,
    operator: OperatorDep,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
) -> dict[str, Any]:
    with runtime.db.read() as tx:
        found = audit.entries(
            tx, after_id=after_id, limit=limit, event_type=event_type, agent_id=agent_id
        )
    return {
        "entries": [{**asdict(e), "at_iso": isoformat(e.at)} for e in found],
        "next_after_id": found[-1].id if found else after_id,
    }
