"""Probes for orchestrators: ``GET /livez`` and ``GET /readyz``.

``/livez`` says the process serves requests: no database, no thread hop, so a
slow or gone database never gets a live process restarted. ``/readyz`` says it
can do its work: the database answers (on a fresh connection, within
:data:`PROBE_TIMEOUT_S`, never queued behind the pool) and its schema is at the
head this version ships; otherwise 503 ``NOT_READY``, so a load balancer sends
traffic elsewhere until it is.
"""

from __future__ import annotations

import logging
from typing import Literal

import anyio
from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from racefree import migrations
from racefree.core.db import UNAVAILABLE, Database
from racefree.core.errors import RacefreeError
from racefree.http.pipeline import PipelineRoute, runtime_of
from racefree.http.problems import errors, problem_response
from racefree.system.errors import SystemCode

log = logging.getLogger("racefree.http")

router = APIRouter(tags=["system"], route_class=PipelineRoute)

#: How long a readiness probe waits for the database before it answers 503.
PROBE_TIMEOUT_S = 1.5


class Live(BaseModel):
    status: Literal["alive"] = "alive"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    schema_revision: str


@router.get("/livez", response_model=Live)
async def livez() -> Response:
    """200 while the process serves requests (no database involved)."""
    return JSONResponse(Live().model_dump())


@router.get("/readyz", response_model=Ready, responses=errors(SystemCode.NOT_READY))
async def readyz(request: Request) -> Response:
    """200 when the database answers and its schema is at head; else 503 ``NOT_READY``."""
    try:
        revision = await probe_revision(runtime_of(request).db)
        head = migrations.head_revision()
        if revision != head:
            raise not_ready(f"the schema is at {revision}, this version needs {head}")
    except RacefreeError as error:
        return problem_response(error)
    return JSONResponse(Ready(schema_revision=revision or "").model_dump())


async def probe_revision(db: Database) -> str | None:
    """The schema revision, read within :data:`PROBE_TIMEOUT_S`; 503 when it is not."""
    revision: str | None = None
    with anyio.move_on_after(PROBE_TIMEOUT_S + 0.5):
        try:
            # abandoned, not awaited, if the database hangs: the answer must not wait for it
            revision = await to_thread.run_sync(
                migrations.probe_revision, db, PROBE_TIMEOUT_S, abandon_on_cancel=True
            )
        except UNAVAILABLE as exc:
            log.warning("not ready: %s", exc)
            raise not_ready("the database does not answer") from exc
        return revision
    raise not_ready("the database did not answer in time")


def not_ready(detail: str) -> RacefreeError:
    return RacefreeError(SystemCode.NOT_READY, detail=detail, retry_after=1)
