"""``GET /v1/nonce``: single-use nonces for owner signatures (no auth, and no writes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from racefree import owners
from racefree.core.clock import isoformat
from racefree.http import schemas
from racefree.http.pipeline import Call, PipelineRoute, run

router = APIRouter(prefix="/v1", tags=["owners"], route_class=PipelineRoute)


def _nonce(call: Call) -> dict[str, Any]:
    value, expires_at = owners.issue_nonce_stateless(call.runtime.db, now=call.runtime.clock.now())
    return {"nonce": value, "expires_at": isoformat(expires_at), "expires_at_epoch": expires_at}


@router.get("/nonce", response_model=schemas.Nonce)
async def nonce(request: Request) -> Response:
    return await run(request, _nonce)
