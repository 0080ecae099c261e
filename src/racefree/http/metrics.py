"""Prometheus metrics of the HTTP layer, and the ``/metrics`` route."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

from racefree.core.db import UNAVAILABLE
from racefree.http.deps import RuntimeDep
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

router = APIRouter()

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
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text exposition of every racefree metric in this process."""
    _refresh_kill_switch(runtime)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _refresh_kill_switch(runtime: Runtime) -> None:
    """The state as the database has it now (another process may have moved it)."""
    try:
        state = status.probe_state(runtime.db, SCRAPE_PROBE_TIMEOUT_S)
    except UNAVAILABLE:
        return  # keep the last known state; /readyz tells that the database is gone
    if state is not None:
        kill_switch_metrics.show(state)
