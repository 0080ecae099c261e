"""``GET /v1/events/stream``: the outbox as Server-Sent Events (operator; docs/events.md).

Each frame is ``id: <event id>`` and ``data: <the webhook payload as JSON>``
(no ``event:`` field, so a browser's ``onmessage`` sees every type). Resume
with ``Last-Event-ID`` (what browsers send on reconnect) or ``?after_id=``:
the stream continues after that event in outbox order (``?after_id=0``: from
the first event; neither: from now). ``?last=N`` starts before the last N
events in outbox order instead -- a tail that cannot miss an event committing
late with a lower position, as a start taken from the audit log's ids could.
``Last-Event-ID`` wins over both. ``?types=A,B`` keeps only those types
(with ``?last=N``, N counts events of every type: the matching ones among them
are sent, as ``racefree events tail --limit N --types`` prints).
A comment line is sent every ``RACEFREE_EVENTS_HEARTBEAT_S`` of silence, so
proxies keep the connection and clients notice a dead one.

Under the request pipeline: the guard, the operator's authentication and the
resume position are one hop (:func:`racefree.http.pipeline.prepare`); the
subscription and the stream then live on the event loop -- one broadcaster task
polls the outbox for every subscriber, no thread per stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from racefree.core.errors import GeneralCode, RacefreeError, issue, validation_error
from racefree.events import outbox
from racefree.events.broadcaster import Broadcaster, Overflowed, Subscription
from racefree.events.outbox import Event, Position
from racefree.http.auth import OPERATOR, OPERATOR_AUTH_CODES
from racefree.http.pipeline import Call, PipelineRoute, prepare
from racefree.http.problems import errors, problem_response
from racefree.runtime import Runtime

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=PipelineRoute)

MAX_EVENT_ID = 2**63 - 1
EVENT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
MAX_TYPES = 100


def broadcaster(request: Request, runtime: Runtime) -> Broadcaster:
    """The process's one broadcaster (made on first use, on the app's event loop)."""
    state = request.app.state
    found: Broadcaster | None = getattr(state, "event_broadcaster", None)
    if found is None:
        found = Broadcaster(
            runtime.db,
            interval_s=runtime.settings.events_poll_interval_s,
            buffer=runtime.settings.events_subscriber_buffer,
            max_subscribers=runtime.settings.events_max_streams,
        )
        state.event_broadcaster = found
    return found


def parse_types(raw: str | None) -> list[str] | None:
    """``A,B`` -> ``["A", "B"]``; each must look like an event type."""
    if raw is None or not raw.strip():
        return None
    names = [t.strip() for t in raw.split(",") if t.strip()]
    bad = [n for n in names if not EVENT_TYPE.match(n)]
    if bad or len(names) > MAX_TYPES:
        raise validation_error(
            [issue("query", "types", msg="invalid event type")],
            detail=f"types must be at most {MAX_TYPES} comma-separated event types (A-Z, 0-9, _)",
        )
    return names


def _event_id(raw: str) -> int:
    if not raw.isdigit() or int(raw) > MAX_EVENT_ID:
        raise validation_error(
            [issue("header", "Last-Event-ID", msg="not an event id")],
            detail="Last-Event-ID must be an event id (a non-negative integer)",
        )
    return int(raw)


def start_position(runtime: Runtime, event_id: int | None, last: int | None) -> Position | None:
    """After ``event_id`` if given, else before the ``last`` N events, else None ("from now")."""
    if event_id is None and last is not None:
        with runtime.db.read() as tx:
            return outbox.rewind(tx, last)
    return resume_position(runtime, event_id)


def resume_position(
    runtime: Runtime, event_id: int | None, *, given: tuple[str, str] = ("query", "after_id")
) -> Position | None:
    """Where to resume after ``event_id``; 0 is the very beginning; None is "from now".

    ``given``: where the request carried the id (an unknown one is reported there).
    """
    if event_id is None:
        return None
    if event_id == 0:
        return outbox.START
    with runtime.db.read() as tx:
        found = outbox.position_of(tx, event_id)
    if found is None:
        raise validation_error(
            [issue(*given, msg="unknown event id")],
            detail=f"no event with id {event_id} ({given[1]}): resume from an id the stream sent",
        )
    return found


def frame(event: Event) -> str:
    data = json.dumps(event.payload(), separators=(",", ":"))
    return f"id: {event.id}\ndata: {data}\n\n"


async def _frames(hub: Broadcaster, sub: Subscription, heartbeat_s: float) -> AsyncIterator[str]:
    yield ": racefree event stream\n\n"
    try:
        async for event in hub.events(sub, heartbeat_s):
            yield ": heartbeat\n\n" if event is None else frame(event)
    except Overflowed:
        yield ": fell behind; reconnect with Last-Event-ID to resume\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    # one Server-Sent Event (comments such as heartbeats carry none)
                    "schema": {
                        "type": "object",
                        "description": "`id:` the event id; `data:` the JSON of"
                        " `{id, type, occurred_at, data}`",
                        "properties": {
                            "id": {"type": "string", "pattern": "^[0-9]+$"},
                            "event": {"type": "string"},
                            "data": {"type": "string", "contentMediaType": "application/json"},
                            "retry": {"type": "integer"},
                        },
                        "required": ["id", "data"],
                    }
                }
            },
            "description": "Server-Sent Events",
        },
        **errors(*OPERATOR_AUTH_CODES, GeneralCode.VALIDATION_ERROR, GeneralCode.RATE_LIMITED),
    },
    dependencies=[OPERATOR],
)
async def stream(
    request: Request,
    after_id: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
    last: Annotated[int | None, Query(ge=0, le=outbox.MAX_PAGE)] = None,
    types: Annotated[str | None, Query(max_length=6600)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """Events as they commit, in outbox order (gap-free; see racefree.events.outbox)."""

    def start(call: Call) -> tuple[Position | None, list[str] | None]:
        # after authentication, so an unauthenticated caller hears 401, not 400
        wanted = parse_types(types)
        if after_id is not None and last is not None:
            raise validation_error(
                [issue("query", "last", msg="after_id and last exclude each other")],
                detail="start after an event (after_id) or before the last N (last), not both",
            )
        if last_event_id:  # a reconnect resumes where it was, whatever the URL says
            resumed = _event_id(last_event_id)
            given = ("header", "Last-Event-ID")
            return resume_position(call.runtime, resumed, given=given), wanted
        return start_position(call.runtime, after_id, last), wanted

    prepared = await prepare(request, start, brief=True)
    if isinstance(prepared, Response):
        return prepared  # the guard's 503, 401/403, or 400
    after, wanted = prepared
    runtime: Runtime = request.app.state.runtime
    hub = broadcaster(request, runtime)
    try:
        sub = await hub.subscribe(after, wanted)
    except RacefreeError as exc:  # 429 RATE_LIMITED: as many streams as this server serves
        return problem_response(exc)
    return StreamingResponse(
        _frames(hub, sub, runtime.settings.events_heartbeat_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
