"""The kill switch guard: while the switch is not NORMAL, refuse with 503 ``SYSTEM_LOCKED``.

Pure ASGI middleware, installed inside the request-context middleware (so the
refusal carries ``X-Request-ID`` and is counted) and outside routing, so it
answers before any authentication or domain work -- a route need not even
exist to be refused.

It must hold across processes (a second server, the CLI), so it reads the
state from the database on every guarded request: one primary-key read of one
row. There is no cache: any cache would let a process serve a request that
started after an activation committed elsewhere. Allow-listed requests
(docs/state-machines.md) skip the read altogether:

* ``GET /health``, ``/metrics``, the dashboard, everything under ``/v1/kill-switch``;
* operator ``GET`` requests -- checked only while locked, by the operator
  token itself (a mere ``rf_op_`` prefix is not enough).
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from racefree import operators
from racefree.core import tokens
from racefree.core.db import Tx
from racefree.core.errors import ErrorCode, RacefreeError
from racefree.http.problems import add_response, errors, problem_response
from racefree.killswitch import status
from racefree.runtime import Runtime

KILL_SWITCH_PREFIX = "/v1/kill-switch"
DASHBOARD_PREFIX = "/dashboard"
READ_METHODS = frozenset({"GET", "HEAD"})


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def always_allowed(method: str, path: str) -> bool:
    """Requests served whatever the state, without reading it."""
    if _under(path, KILL_SWITCH_PREFIX) or _under(path, DASHBOARD_PREFIX):
        return True
    return method in READ_METHODS and path in ("/health", "/metrics")


def _operator_token(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and tokens.well_formed(token, tokens.OPERATOR_PREFIX):
                return token
    return None


class KillSwitchGuard:
    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or always_allowed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        operator_token = _operator_token(scope) if scope["method"] in READ_METHODS else None
        refusal = await to_thread.run_sync(self._refusal, operator_token)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await problem_response(refusal)(scope, receive, send)

    def _refusal(self, operator_token: str | None) -> RacefreeError | None:
        """None to serve the request; the 503 to answer with otherwise (blocking: DB reads)."""
        with self.runtime.db.read() as tx:
            view = status.guard_view(tx)
            if view.state == status.NORMAL:
                return None
            if operator_token is not None and _is_operator(tx, operator_token):
                return None
        return status.system_locked(view)


def _is_operator(tx: Tx, token: str) -> bool:
    try:
        operators.authenticate(tx, token)
    except RacefreeError:
        return False
    return True


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the guard's 503 ``SYSTEM_LOCKED`` to every operation it can refuse."""
    [(status_code, doc)] = errors(ErrorCode.SYSTEM_LOCKED).items()
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not always_allowed(method.upper(), path):
                add_response(operation.setdefault("responses", {}), status_code, doc)
    return schema
