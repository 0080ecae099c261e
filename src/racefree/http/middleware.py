"""Request context: ``X-Request-ID``, metrics, and a problem+json 500 for anything unhandled."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racefree.core import context
from racefree.core.errors import PROBLEM_CONTENT_TYPE
from racefree.core.ids import new_id
from racefree.http import metrics
from racefree.http.problems import internal_error_body

log = logging.getLogger("racefree.http")

REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            return candidate if _ACCEPTABLE_ID.match(candidate) else None
    return None


class RequestContextMiddleware:
    """Pure ASGI middleware (no per-request task or body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or f"req_{new_id().replace('-', '')}"
        token = context.request_id.set(request_id)
        state: dict[str, Any] = {"status": 500, "started": False}
        started_at = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error serving %s %s",
                scope["method"],
                scope["path"],
                extra={"request_id": request_id},
            )
            if not state["started"]:
                await _send_internal_error(send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.REQUESTS.labels(scope["method"], route, str(state["status"])).inc()
            metrics.DURATION.labels(scope["method"], route).observe(
                time.perf_counter() - started_at
            )
            context.request_id.reset(token)


async def _send_internal_error(send: Send) -> None:
    body = internal_error_body()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
