"""Request context: request ids, edge limits, the access log, metrics, a problem+json 500.

Pure ASGI (no per-request task, no body buffering, no thread):

* **Request ids.** A client's ``X-Request-ID`` is the request's id when it is
  acceptable (1 to 128 printable ASCII characters, no leading or trailing
  space); otherwise the server generates one (``req_...``). The one id is echoed
  in ``X-Request-ID`` and is the ``request_id`` of problem documents, log lines
  (the access line and the 500 line included) and audit rows, so a client's
  id finds its request everywhere.
* **Edge limits** (:mod:`racefree.http.edge`): control characters in the path,
  query or headers are refused with 400 before routing; ``receive`` is wrapped so
  no body is read past ``RACEFREE_MAX_BODY_BYTES``.
* **The access log**: one line per request on ``racefree.access`` with
  ``request_id, method, route, status, duration_ms`` -- the route *template*
  (``/v1/agents/{agent_id}``), never the raw path: ids and whatever a client sent
  do not belong in an index.
* **Metrics** with label values from bounded sets only: a method outside the
  standard ones is ``OTHER``, a request no route matched is ``unmatched``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racefree.core import context
from racefree.core.errors import PROBLEM_CONTENT_TYPE
from racefree.core.ids import new_id
from racefree.http import edge, metrics
from racefree.http.problems import internal_error_body, problem_response

log = logging.getLogger("racefree.http")
access_log = logging.getLogger("racefree.access")

REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID_LENGTH = 128
_ACCEPTABLE_ID = re.compile(rf"^[!-~](?:[ -~]{{0,{MAX_REQUEST_ID_LENGTH - 2}}}[!-~])?$")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def acceptable_request_id(candidate: str) -> bool:
    return _ACCEPTABLE_ID.fullmatch(candidate) is not None


def request_id_of(scope: Scope) -> str:
    """The client's acceptable ``X-Request-ID``, else a new server id."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate = bytes(value).decode("latin-1")
            if acceptable_request_id(candidate):
                return candidate
            break
    return f"req_{new_id().replace('-', '')}"


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched``."""
    path: str | None = getattr(scope.get("route"), "path", None)
    return path or "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = context.request_id.set(request_id)
        echoed = request_id.encode("latin-1")
        state: dict[str, Any] = {"status": 500, "started": False}
        started_at = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0] != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, echoed))
                message = {**message, "headers": headers}
            await send(message)

        try:
            refusal = edge.scope_refusal(scope)
            if refusal is not None:
                await problem_response(refusal)(scope, receive, send_with_id)
                return
            limited = edge.limit_body(receive, scope, self.max_body_bytes)
            await self.app(scope, limited, send_with_id)
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
            elapsed = time.perf_counter() - started_at
            method, route = method_label(scope["method"]), route_template(scope)
            metrics.observe(method, route, str(state["status"]), elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _access(request_id, method, route, state["status"], elapsed)
            context.request_id.reset(token)


def _access(request_id: str, method: str, route: str, status: int, elapsed: float) -> None:
    duration_ms = round(elapsed * 1000, 2)
    access_log.info(
        "%s %s %d %.2fms",
        method,
        route,
        status,
        duration_ms,
        extra={
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
        },
    )


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
