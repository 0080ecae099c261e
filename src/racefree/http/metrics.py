"""Prometheus metrics of the HTTP layer, and the ``/metrics`` route.

Label values come from bounded sets only (docs/operations.md): the method is one
of the standard methods or ``OTHER``, the route is a route template or
``unmatched`` (:mod:`racefree.http.middleware`), the status is a status code.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

from racefree.core.db import UNAVAILABLE
from racefree.http.pipeline import PipelineRoute, runtime_of
from racefree.killswitch import metrics as kill_switch_metrics
from racefree.killswitch import status
from racefree.runtime import Runtime

REQUESTS = Counter(
    "racefree_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "racefree_http_request_duration_seconds",
    "HTTP request duration by method and route template.",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

#: The labelled children, by (method, route, status): a dict hit per request instead of
#: prometheus_client's locked label lookup. Bounded like the labels themselves.
_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe(method: str, route: str, status: str, seconds: float) -> None:
    """Count one request and its duration (labels from bounded sets, see the module doc)."""
    key = (method, route, status)
    children = _CHILDREN.get(key)
    if children is None:
        children = (REQUESTS.labels(method, route, status), DURATION.labels(method, route))
        _CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


router = APIRouter(route_class=PipelineRoute)

#: A scrape never waits longer than this for the kill switch's state.
SCRAPE_PROBE_TIMEOUT_S = 1.0


@router.get(
    "/metrics",
    include_in_schema=True,
    tags=["system"],
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format 0.0.4",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of every racefree metric in this process."""
    # one hop: the kill switch's state is read from the database (another process may move it)
    await to_thread.run_sync(_refresh_kill_switch, runtime_of(request))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _refresh_kill_switch(runtime: Runtime) -> None:
    """The state as the database has it now (another process may have moved it)."""
    try:
        state = status.probe_state(runtime.db, SCRAPE_PROBE_TIMEOUT_S)
    except UNAVAILABLE:
        return  # keep the last known state; /readyz tells that the database is gone
    if state is not None:
        kill_switch_metrics.show(state)
