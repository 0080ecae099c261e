"""``racefree events tail [--follow]``: the event outbox, one event per line.

Each event is printed as the webhook payload (``{id, type, occurred_at,
data}``), one JSON line per event (``--json`` or not a terminal), or one table
row. Without ``--after-id`` it starts before the last ``--limit`` events (of
every type; ``--types`` then keeps the matching ones among them).

**Local mode** reads the outbox in its gap-free order (racefree.events.outbox).
**Remote mode** without ``--follow`` reads ``GET /v1/audit-log`` (every audit
row is an event; that API pages by id, which is the outbox order on SQLite and
for transactions that do not overlap). With ``--follow`` it reads only
``GET /v1/events/stream`` -- from ``?last=N`` (before the last ``--limit``
events) or after ``--after-id`` -- which is gap-free; when the server ends the
stream, or the connection drops (a restart), it resumes after the last event
printed (a server unreachable at the start fails at once, exit 6; one that went
away is tried again for up to a minute). Following from an id read
from the audit log instead could skip an event that commits late with a lower
position in the stream's order (PostgreSQL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated

import httpx
import typer

from racefree.cli import audit, modes, output, shapes
from racefree.cli.failures import CliError, UsageError
from racefree.cli.options import Globals
from racefree.cli.webhooks import split_types
from racefree.client import ApiError, TransportError, models

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.events.outbox import Position
    from racefree.runtime import Runtime

app = typer.Typer(
    help="The event outbox (every audit row is an event): tail.", no_args_is_help=True
)

MAX_PAGE = 1000  # the most one read prints (racefree.events.outbox.MAX_PAGE)
RECONNECT_PAUSE_S = 0.5
RECONNECT_PAUSE_MAX_S = 5.0
#: how long a follower keeps trying to reach a server that went away (a restart)
RECONNECT_DEADLINE_S = 60.0
COLUMNS = (
    ("ID", "id", 8),
    ("OCCURRED", "occurred_at", 20),
    ("TYPE", "type", 28),
    ("ACTOR", "data.actor", 24),
    ("AGENT", "data.agent_id", 36),
    ("DETAILS", "data.details", 0),
)


@app.command("tail")
def tail(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new events")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=0, max=MAX_PAGE, help="start with the last N events")
    ] = 20,
    after_id: Annotated[
        int | None, typer.Option(min=0, help="start after this event id (0: the first)")
    ] = None,
    types: Annotated[str | None, typer.Option(help="comma-separated event types")] = None,
    count: Annotated[
        int, typer.Option(min=0, help="with --follow, exit after N events (0: never)")
    ] = 0,
) -> None:
    """Print events in outbox order (the webhook payload), and new ones with --follow."""
    if count and not follow:
        raise UsageError("--count is for --follow")
    wanted = split_types(types) or None
    given = modes.options(ctx)

    def local(runtime: Runtime) -> None:
        events = _local(runtime, follow=follow, limit=limit, after_id=after_id, types=wanted)
        _print(given, events, follow=follow, count=count)

    def remote(client: Client) -> None:
        events = _remote(client, follow=follow, limit=limit, after_id=after_id, types=wanted)
        _print(given, events, follow=follow, count=count)

    # printed as they come, inside the mode (while the runtime or the client is open)
    modes.run(ctx, local=local, remote=remote)


# -- local mode: the outbox ---------------------------------------------------------------


def _local(
    runtime: Runtime, *, follow: bool, limit: int, after_id: int | None, types: list[str] | None
) -> Iterator[models.Event]:
    from racefree.events import outbox

    position = _local_start(runtime, limit, after_id)
    while True:
        with runtime.db.read() as tx:
            batch = outbox.read(tx, position, types=types, limit=MAX_PAGE)
        yield from (shapes.event(e) for e in batch.events)
        if not follow:
            return
        position = batch.position
        if not batch.events:
            time.sleep(runtime.settings.events_poll_interval_s)


def _local_start(runtime: Runtime, limit: int, after_id: int | None) -> Position:
    """After ``after_id``, else before the last ``limit`` events."""
    from racefree.events import outbox

    with runtime.db.read() as tx:
        if after_id is None:
            return outbox.rewind(tx, limit)
        found = outbox.position_of(tx, after_id) if after_id else outbox.START
    if found is None:
        raise _unknown(after_id)
    return found


def _unknown(event_id: int) -> Exception:
    from racefree.core.errors import issue, validation_error

    return validation_error(
        [issue("argument", "after-id", msg="unknown event id")],
        detail=f"no event with id {event_id}",
    )


# -- remote mode: the audit log, then the stream ------------------------------------------


def _remote(
    client: Client, *, follow: bool, limit: int, after_id: int | None, types: list[str] | None
) -> Iterator[models.Event]:
    if after_id:
        _check_exists(client, after_id)
    if after_id is not None:
        if follow:  # the stream is gap-free from the event it resumes after
            yield from _stream(client, after_id, types)
            return
        yield from _after(client, after_id, types)
        return
    if follow:  # the stream's own tail: an id from the audit log could skip a late commit
        yield from _stream(client, None, types, last=limit)
        return
    last = audit.newest(client, limit, None) if limit else []
    yield from (shapes.event_of(e) for e in last if types is None or e.event_type in types)


def _check_exists(client: Client, event_id: int) -> None:
    """Refuse an unknown ``--after-id`` as local mode does (the audit row is the event)."""
    found = client.audit.list(after_id=event_id - 1, limit=1).entries
    if not found or found[0].id != event_id:
        raise CliError(f"VALIDATION_ERROR: no event with id {event_id}")


def _after(client: Client, after_id: int, types: list[str] | None) -> Iterator[models.Event]:
    """Up to one page of (matching) events after ``after_id``, in id order."""
    found: list[models.AuditEntry] = []
    each: list[str | None] = list(types) if types else [None]  # the audit API filters by one
    for event_type in each:
        found.extend(audit.forward(client, after_id, event_type, pages=1))
    found.sort(key=lambda e: e.id)
    return (shapes.event_of(e) for e in found[:MAX_PAGE])


def _stream(
    client: Client, after_id: int | None, types: list[str] | None, *, last: int | None = None
) -> Iterator[models.Event]:
    """The stream after ``after_id`` (or before the ``last`` N events), resumed after the last
    event printed whenever the server ends it or the connection drops (a restart).

    A server that cannot be reached at the first attempt fails at once (one line, exit 6);
    after that, reconnecting is retried for up to :data:`RECONNECT_DEADLINE_S`.
    """
    cursor = after_id
    reached = False  # the server answered once: a failure now is a restart or a drop
    failing_since: float | None = None
    pause = RECONNECT_PAUSE_S
    while True:
        resumed = cursor is not None
        try:
            for event in client.events.stream(
                after_id=cursor, last=None if resumed else last, types=types
            ):
                reached, failing_since, pause = True, None, RECONNECT_PAUSE_S
                cursor = event.id
                yield event
            reached, failing_since, pause = True, None, RECONNECT_PAUSE_S  # ended cleanly
        except (TransportError, ApiError) as exc:
            if isinstance(exc, TransportError) and not _connect_failure(exc):
                reached, failing_since = True, None  # it answered, then the connection dropped
            elif not reached or (isinstance(exc, ApiError) and not exc.retryable):
                raise  # unreachable from the start, or an answer that a retry would not change
            now = time.monotonic()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since > RECONNECT_DEADLINE_S:
                raise
        time.sleep(pause)
        pause = min(pause * 2, RECONNECT_PAUSE_MAX_S)


def _connect_failure(exc: TransportError) -> bool:
    """No connection at all (refused, unknown host, connect timeout), as opposed to a drop."""
    return isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


# -- printing -----------------------------------------------------------------------------


def _print(given: Globals, events: Iterable[models.Event], *, follow: bool, count: int) -> None:
    as_json = output.wants_json(given)
    if not as_json and not follow:
        rows = [e.model_dump(mode="json") for e in events]
        output.write(output.table(rows, [(header, path) for header, path, _ in COLUMNS]))
        return
    if not as_json:
        output.write(_line([header for header, _, _ in COLUMNS]))
    for n, event in enumerate(events, start=1):
        data = event.model_dump(mode="json")
        if as_json:
            output.write(json.dumps(data, ensure_ascii=False))
        else:
            output.write(_line([output.cell(data, path) for _, path, _ in COLUMNS]))
        if count and n >= count:
            return


def _line(cells: list[str]) -> str:
    """One row of a followed table (the widths fixed: rows are printed as they come)."""
    widths = [width for _, _, width in COLUMNS]
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
