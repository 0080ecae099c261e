"""``GET /v1/nonce``: single-use nonces for owner signatures (no auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from racefree import owners
from racefree.core.clock import isoformat
from racefree.http import schemas
from racefree.http.deps import RuntimeDep

router = APIRouter(prefix="/v1", tags=["owners"])


@router.get("/nonce", response_model=schemas.Nonce)
def nonce(runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.write() as tx:
        value, expires_at = owners.issue_nonce(tx, now=runtime.clock.now())
    return {"nonce": value, "expires_at": isoformat(expires_at), "expires_at_epoch": expires_at}
