"""Prometheus metrics of the HTTP layer, and the ``/metrics`` route.

Label values come from bounded sets only (docs/operations.md): the method is one
of the standard methods or ``OTHER``, the route is a route template or
``unmatched`` (:mod:`racefree.http.middleware`), the status is a status code.

``racefree_outbox_lag_events`` is read from the database when ``/metrics`` is
scraped (:func:`racefree.events.webhooks.lag`): the committed events that the
furthest-behind ACTIVE webhook has not yet had delivered. It is a figure of the
database, so every process reports the same one (aggregate with ``max``); when
the database does not answer it is NaN, and the rest of the page is served.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from racefree.events import webhooks
from racefree.http.pipeline import PipelineRoute, inline_reads, runtime_of
from racefree.runtime import Runtime

log = logging.getLogger("racefree.http.metrics")

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
OUTBOX_LAG = Gauge(
    "racefree_outbox_lag_events",
    "Events committed but not yet delivered: for the ACTIVE webhook furthest behind, the"
    " committed events of its types after its cursor (0 without webhooks; NaN when the"
    " database does not answer). Read from the database at scrape time.",
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
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of every racefree metric in this process."""
    runtime = runtime_of(request)
    # one read (on the event loop on SQLite, one thread hop on PostgreSQL, like the pipeline)
    if inline_reads(runtime):
        _read_outbox_lag(runtime)
    else:
        await to_thread.run_sync(_read_outbox_lag, runtime)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _read_outbox_lag(runtime: Runtime) -> None:
    try:
        with runtime.db.read() as tx:
            OUTBOX_LAG.set(webhooks.lag(tx))
    except Exception:  # the database is down: the page still answers, this figure is unknown
        log.debug("outbox lag not read", exc_info=True)
        OUTBOX_LAG.set(math.nan)
