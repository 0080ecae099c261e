"""``GET /v1/nonce``: single-use nonces for owner signatures (no auth, and no writes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from racefree import owners
from racefree.core.clock import isoformat
from racefree.http.deps import RuntimeDep

router = APIRouter(prefix="/v1", tags=["owners"])


@router.get("/nonce")
def nonce(runtime: RuntimeDep) -> dict[str, Any]:
    value, expires_at = owners.issue_nonce_stateless(runtime.db, now=runtime.clock.now())
    return {"nonce": value, "expires_at": isoformat(expires_at), "expires_at_epoch": expires_at}
