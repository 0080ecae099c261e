"""The FastAPI app factory."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from racefree import __version__
from racefree.http import conditional, guard, idempotency, metrics, security
from racefree.http.access import AccessLogMiddleware
from racefree.http.hygiene import HygieneMiddleware
from racefree.http.idempotency import IdempotencyMiddleware
from racefree.http.middleware import RequestContextMiddleware
from racefree.http.problems import document_errors, install_handlers
from racefree.http.routes import (
    agents,
    audit,
    health,
    killswitch,
    operators,
    owners,
    plans,
    probes,
    sessions,
    transactions,
)
from racefree.runtime import Runtime

ROUTERS = (
    health.router,
    probes.router,
    metrics.router,
    audit.router,
    owners.router,
    operators.router,
    agents.router,
    sessions.router,
    plans.router,
    killswitch.router,
    transactions.router,
)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="racefree",
        version=__version__,
        summary="Race-free state changes: CAS transitions, atomic cascades, typed conflicts.",
    )
    app.state.runtime = runtime
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # added first = inner: the guard runs inside the request context, before routing and auth
    app.add_middleware(IdempotencyMiddleware, runtime=runtime)  # a refused request claims none
    app.add_middleware(guard.KillSwitchGuard, runtime=runtime)
    app.add_middleware(HygieneMiddleware)  # HEAD, WWW-Authenticate, nosniff on every answer
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestContextMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schema = security.document(ROUTERS, document_errors(schema))
            schema = conditional.document(guard.document(schema))
            app.openapi_schema = idempotency.document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
