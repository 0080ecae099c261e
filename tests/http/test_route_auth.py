"""Every operator route refuses an agent session token, whatever routes exist.

The test walks ``app.routes`` of the real app, so routes added later are
covered without touching it: every route whose dependencies include
``require_operator`` (and no session-capable dependency) must answer a
session token with 401/403.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from racefree import agents, sessions
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.http import create_app
from racefree.http.auth import require_operator, require_operator_or_session, require_session
from racefree.runtime import Runtime

SESSION_DEPENDENCIES = {require_session, require_operator_or_session}


def _calls(route: APIRoute) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            found.add(dep.call)
        stack.extend(dep.dependencies)
    return found


def _route_table(app: Any) -> Iterator[tuple[str, set[str], APIRoute]]:
    """Every API route as ``(path, methods, route)``, through included routers too."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.16x: lazy includes
    except ImportError:  # older FastAPI flattens included routers into app.routes
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, set(route.methods), route
        return
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            yield str(ctx.path), set(ctx.methods or ()), ctx.original_route


def _operator_only_routes(app: Any) -> Iterator[tuple[str, str, APIRoute]]:
    for path, methods, route in _route_table(app):
        calls = _calls(route)
        if require_operator not in calls or calls & SESSION_DEPENDENCIES:
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            yield method, path, route


@pytest.fixture
def session_token(db: Database, clock: ManualClock) -> str:
    with db.write() as tx:
        agent = agents.create(tx, name="intruder", now=clock.now())
        return sessions.issue(tx, agent.id, now=clock.now(), policy=sessions.Policy()).token


def test_the_walk_finds_the_operator_routes(runtime: Runtime) -> None:
    routes = list(_operator_only_routes(create_app(runtime)))
    assert {
        ("GET", "/v1/agents"),
        ("POST", "/v1/sessions"),
        ("GET", "/v1/audit-log"),
        ("DELETE", "/v1/sessions/{session_id}"),
    } <= {(m, p) for m, p, _ in routes}
    for method, path, route in routes:
        assert require_operator in _calls(route), f"{method} {path} has no operator auth"


def test_a_session_token_is_refused_on_every_operator_route(
    client: TestClient, session_token: str
) -> None:
    headers = {"Authorization": f"Bearer {session_token}"}
    refused = []
    for method, path, _ in _operator_only_routes(client.app):
        url = re.sub(r"\{[^}]+\}", "00000000-0000-7000-8000-000000000000", path)
        response = client.request(method, url, headers=headers, json={})
        assert response.status_code in (401, 403), f"{method} {path}: {response.status_code}"
        assert response.headers["content-type"] == "application/problem+json"
        refused.append((method, path))
    assert len(refused) >= 10


def test_an_operator_token_is_refused_on_session_routes(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    response = client.get("/v1/sessions/current", headers=operator_headers)
    assert (response.status_code, response.json()["code"]) == (403, "FORBIDDEN")
    response = client.put("/v1/sessions/x/renew", headers=operator_headers)
    assert (response.status_code, response.json()["code"]) == (403, "FORBIDDEN")
