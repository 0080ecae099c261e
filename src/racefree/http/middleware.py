"""Request context: request ids, edge limits, metrics, a problem+json 500 for anything unhandled.

Pure ASGI (no per-request task, no body buffering, no thread):

* **Request ids.** Every request gets a server-generated id (``req_...``): it is
  the ``request_id`` of problem documents, log lines and audit rows, so an audit
  row's id always names one request of this server. A client's acceptable
  ``X-Request-ID`` is echoed back in the response header (docs/operations.md) and
  kept apart: in the log line and in audit rows as ``details.client_request_id``.
* **Edge limits** (:mod:`racefree.http.edge`): control characters in the path,
  query or headers are refused with 400 before routing; ``receive`` is wrapped so
  no body is read past ``RACEFREE_MAX_BODY_BYTES``.
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

REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            return candidate if _ACCEPTABLE_ID.match(candidate) else None
    return None


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{new_id().replace('-', '')}"
        client_id = _incoming_request_id(scope)
        token = context.request_id.set(request_id)
        client_token = context.client_request_id.set(client_id)
        echoed = (client_id or request_id).encode("latin-1")
        state: dict[str, Any] = {"status": 500, "started": False}
        started_at = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
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
                extra={"request_id": request_id, "client_request_id": client_id},
            )
            if not state["started"]:
                await _send_internal_error(send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.observe(
                method_label(scope["method"]),
                route,
                str(state["status"]),
                time.perf_counter() - started_at,
            )
            context.client_request_id.reset(client_token)
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
