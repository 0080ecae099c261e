"""``GET /health``: the kill switch state, never authenticated; 503 when the database is gone.

It keeps its shape either way (``{status, version, kill_switch: {state}}``), so
dashboards that read it need no second parser: ``status`` is ``ok`` or
``unavailable`` (then ``kill_switch.state`` is null: it cannot be known). Served
by the pipeline as a brief route (no hop on SQLite, one on PostgreSQL); the
bounded, fresh-connection probe of a hanging database is ``/readyz``'s
(:mod:`racefree.http.routes.probes`).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from racefree import __version__
from racefree.core.db import UNAVAILABLE
from racefree.core.errors import RacefreeError
from racefree.http.pipeline import Call, PipelineRoute, run
from racefree.killswitch import status as kill_switch_status

log = logging.getLogger("racefree.http")

router = APIRouter(tags=["system"], route_class=PipelineRoute)


class KillSwitchState(BaseModel):
    state: str | None = Field(description="NORMAL, ACTIVATED or RECOVERING; null when unknown")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    kill_switch: KillSwitchState


UNKNOWN = KillSwitchState(state=None)
_GONE: tuple[type[Exception], ...] = (RacefreeError, *UNAVAILABLE)


def _health(call: Call) -> dict[str, Any] | Response:
    try:
        call.runtime.db.check_present()
        with call.runtime.db.read() as tx:
            state = kill_switch_status.guard_view(tx).state  # the one-row read the guard makes
    except _GONE as exc:
        log.warning("health: database unavailable: %s", exc)
        gone = Health(status="unavailable", version=__version__, kill_switch=UNKNOWN)
        return JSONResponse(gone.model_dump(), status_code=503)
    return {"status": "ok", "version": __version__, "kill_switch": {"state": state}}


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database does not answer"}},
)
async def health(request: Request) -> Response:
    return await run(request, _health, brief=True)
