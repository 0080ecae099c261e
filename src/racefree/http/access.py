"""The access log: one line per request on ``racefree.access``.

Fields: ``request_id, method, route`` (the route *template*, ``/v1/agents/{agent_id}``,
never the raw path: ids and whatever a client sent do not belong in an index),
``status`` and ``duration_ms``. Pure ASGI, installed inside the request-context
middleware so the request id is set, and outside the kill-switch guard so its
refusals are logged too.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racefree.core import context

log = logging.getLogger("racefree.access")

#: Request methods logged as sent; anything else is ``OTHER`` (bounded, like the metrics).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched``."""
    path: str | None = getattr(scope.get("route"), "path", None)
    return path or "unmatched"


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an unhandled error is answered 500 outside

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = route_template(scope)
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            log.info(
                "%s %s %d %.2fms",
                method,
                route,
                status,
                duration_ms,
                extra={
                    "request_id": context.request_id.get(),
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
