"""Prometheus metrics of the HTTP layer, and the ``/metrics`` route.

Label values come from bounded sets only (docs/operations.md): the method is one
of the standard methods or ``OTHER``, the route is a route template or
``unmatched`` (:mod:`racefree.http.middleware`), the status is a status code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

from racefree.http.pipeline import PipelineRoute

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


@router.get("/metrics", include_in_schema=True, tags=["system"], response_class=Response)
async def metrics() -> Response:
    """Prometheus text exposition of every racefree metric in this process."""
    # no database: served on the event loop, no thread hop
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
