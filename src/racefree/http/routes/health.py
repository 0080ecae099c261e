"""``GET /health``: liveness plus the kill switch state; never authenticated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from racefree import __version__
from racefree.http.deps import RuntimeDep
from racefree.killswitch import status as kill_switch_status

router = APIRouter(tags=["system"])


@router.get("/health")
def health(runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.read() as tx:
        state = kill_switch_status.read(tx).state
    return {"status": "ok", "version": __version__, "kill_switch": {"state": state}}
