"""The baseline: a bare Starlette app answering what ``GET /health`` answers, no database.

Served by the same server stack as racefree in the same run (``bench.fastpath``).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = {"status": "ok", "version": "0.1.0", "kill_switch": {"state": "NORMAL"}}


async def health(request: Request) -> JSONResponse:
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/health", health)])
