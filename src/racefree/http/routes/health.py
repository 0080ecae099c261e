"""``GET /health``: liveness plus the kill switch state; never authenticated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from racefree import __version__
from racefree.http.pipeline import Call, PipelineRoute, run
from racefree.killswitch import status as kill_switch_status

router = APIRouter(tags=["system"], route_class=PipelineRoute)


def _health(call: Call) -> dict[str, Any]:
    with call.runtime.db.read() as tx:
        state = kill_switch_status.guard_view(tx).state  # the one-row read the guard makes
    return {"status": "ok", "version": __version__, "kill_switch": {"state": state}}


@router.get("/health", response_model=dict[str, Any])
async def health(request: Request) -> Response:
    return await run(request, _health, reads_only=True)
