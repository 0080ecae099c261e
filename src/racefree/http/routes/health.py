"""``GET /health``: the kill switch state, never authenticated; 503 when the database is gone.

It keeps its shape either way (``{status, version, kill_switch: {state}}``), so
dashboards that read it need no second parser: ``status`` is ``ok`` or
``unavailable`` (then ``kill_switch.state`` is null: it cannot be known).
"""

from __future__ import annotations

import logging
from typing import Literal

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from racefree import __version__
from racefree.core.db import UNAVAILABLE, Database
from racefree.core.errors import RacefreeError
from racefree.http.deps import RuntimeDep
from racefree.http.routes.probes import probe_revision
from racefree.killswitch import status as kill_switch_status

log = logging.getLogger("racefree.http")

router = APIRouter(tags=["system"])


class KillSwitchState(BaseModel):
    state: str | None = Field(description="NORMAL, ACTIVATED or RECOVERING; null when unknown")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    kill_switch: KillSwitchState


UNKNOWN = KillSwitchState(state=None)
_GONE: tuple[type[Exception], ...] = (RacefreeError, *UNAVAILABLE)


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database does not answer"}},
)
async def health(runtime: RuntimeDep) -> Health | JSONResponse:
    try:
        await probe_revision(runtime.db)  # bounded: a dead database must not hang the check
        state = await to_thread.run_sync(_kill_switch_state, runtime.db)
    except _GONE as exc:
        log.warning("health: database unavailable: %s", exc)
        gone = Health(status="unavailable", version=__version__, kill_switch=UNKNOWN)
        return JSONResponse(gone.model_dump(), status_code=503)
    return Health(status="ok", version=__version__, kill_switch=KillSwitchState(state=state))


def _kill_switch_state(db: Database) -> str:
    with db.read() as tx:
        return kill_switch_status.read(tx).state
