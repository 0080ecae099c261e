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
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from racefree import __version__
from racefree.http import guard, metrics, pipeline
from racefree.http.middleware import RequestContextMiddleware
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


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="racefree",
        version=__version__,
        summary="Race-free state changes: CAS transitions, atomic cascades, typed conflicts.",
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
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
    """Every route and dependency is ``async def`` (see :mod:`.pipeline`)."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        calls: list[Callable[..., Any] | None] = [route.endpoint]
        stack = list(route.dependant.dependencies)
        while stack:
            dependency = stack.pop()
            calls.append(dependency.call)
            stack.extend(dependency.dependencies)
        for call in calls:
            if not inspect.iscoroutinefunction(call):
                raise TypeError(
                    f"{route.path}: {getattr(call, '__name__', call)} is not async def; serve"
                    " through racefree.http.pipeline.run (one thread hop per request)"
                )
