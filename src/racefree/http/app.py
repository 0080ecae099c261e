"""The FastAPI app factory.

Dispatch (issue 11): every route that touches the database serves through
:mod:`racefree.http.pipeline` -- one worker-thread hop for guard, authentication,
body and handler; the factory refuses a guarded route that could make FastAPI hop
on its own (a sync endpoint or any dependency). Hot routes are matched first.
Trailing-slash redirects are off: a redirect would be built from the ``Host``
header, and an API client should be told the path is wrong (404), not sent
elsewhere.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from racefree import __version__
from racefree.http import guard, metrics, pipeline
from racefree.http.middleware import RequestContextMiddleware
from racefree.http.pipeline import PipelineRoute
from racefree.http.problems import document_errors, install_handlers
from racefree.http.routes import (
    agents,
    audit,
    health,
    killswitch,
    owners,
    plans,
    sessions,
    transactions,
)
from racefree.runtime import Runtime

ROUTERS = (
    health.router,
    metrics.router,
    audit.router,
    owners.router,
    agents.router,
    sessions.router,
    plans.router,
    killswitch.router,
    transactions.router,
)

#: Matched first, in this order (Starlette tries routes one by one).
HOT_ROUTES = (
    ("GET", "/health"),
    ("POST", "/v1/transactions"),
    ("GET", "/v1/sessions/current"),
    ("PUT", "/v1/sessions/{session_id}/renew"),
    ("POST", "/v1/sessions/{session_id}/renew"),
)


class RacefreeApp(FastAPI):
    """FastAPI with Starlette's own lean middleware stack and call path.

    FastAPI adds per-request telemetry and body-limit layers (and reads the
    environment on each request to ask whether telemetry is on); racefree uses
    neither (its body limit is :mod:`racefree.http.edge`), and they cost about as
    much as a bare Starlette request.
    """

    def build_middleware_stack(self) -> ASGIApp:
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        stack = [
            Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug),
            *self.user_middleware,
            Middleware(ExceptionMiddleware, handlers=handlers, debug=self.debug),
            Middleware(AsyncExitStackMiddleware),  # FastAPI's own request handler needs it
        ]
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(stack):
            app = cls(app, *args, **kwargs)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)


def create_app(runtime: Runtime) -> FastAPI:
    app = RacefreeApp(
        title="racefree",
        version=__version__,
        summary="Race-free state changes: CAS transitions, atomic cascades, typed conflicts.",
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    install_handlers(app)
    for router in ROUTERS:
        # the routes themselves, not a lazy include: Starlette then tries them in one flat
        # list (no per-request include bookkeeping), in the order sorted below
        app.router.routes.extend(router.routes)
    _check_dispatch(app.router.routes)
    app.router.routes.sort(key=_match_order)
    # added first = inner: the guard runs inside the request context, before routing and auth
    app.add_middleware(guard.KillSwitchGuard, runtime=runtime)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=runtime.settings.max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schema = pipeline.document_bodies(schema)
            app.openapi_schema = guard.document(document_errors(schema))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _match_order(route: BaseRoute) -> int:
    if isinstance(route, APIRoute):
        for index, (method, path) in enumerate(HOT_ROUTES):
            if route.path == path and method in (route.methods or ()):
                return index
        return len(HOT_ROUTES)
    return len(HOT_ROUTES) + 1  # the OpenAPI documents and docs pages last


def _check_dispatch(routes: list[BaseRoute]) -> None:
    """Every route is a :class:`PipelineRoute` with an ``async def`` endpoint."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        if not isinstance(route, PipelineRoute) or not inspect.iscoroutinefunction(route.endpoint):
            raise TypeError(
                f"{route.path}: declare it on an APIRouter(route_class=PipelineRoute) with an"
                " async def endpoint serving through pipeline.run (one thread hop per request)"
            )
