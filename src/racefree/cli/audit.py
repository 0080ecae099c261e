"""``racefree audit tail``: the newest audit entries, oldest first; ``audit verify``.

The API pages the log forward from an id (``GET /v1/audit-log?after_id=``)
and has no "newest first"; remote mode finds the newest id with a binary
search on ``after_id`` (``limit=1``: is there an entry above this id?), then
reads forward from a window below it, widening the window until it holds
``--limit`` matching entries. A log under one page is read in one request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel

from racefree.cli import modes, output, shapes
from racefree.cli.failures import CliError
from racefree.client import models

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.runtime import Runtime

app = typer.Typer(help="The audit log (append-only).", no_args_is_help=True)

PAGE = 1000  # the API's largest page
COLUMNS = (
    ("ID", "id"),
    ("AT", "at"),
    ("EVENT", "event_type"),
    ("SEVERITY", "severity"),
    ("ACTOR", "actor"),
    ("AGENT", "agent_id"),
    ("DETAILS", "details"),
)


@app.command("tail")
def tail(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=PAGE, help="how many entries")] = 20,
    event_type: Annotated[str | None, typer.Option(help="only entries of this type")] = None,
) -> None:
    """The newest entries (of one type, with --event-type), oldest first."""

    def local(runtime: Runtime) -> models.AuditPage:
        from racefree.core import audit

        types = (event_type,) if event_type else ()
        with runtime.db.read() as tx:
            found = audit.latest(tx, limit=limit, event_types=types)
        return shapes.audit_page(list(reversed(found)), 0)

    def remote(client: Client) -> models.AuditPage:
        found = newest(client, limit, event_type)
        return models.AuditPage(entries=found, next_after_id=found[-1].id if found else 0)

    page = modes.run(ctx, local=local, remote=remote)
    output.show_list(modes.options(ctx), page, page.entries, COLUMNS)


class ChainCheck(BaseModel):
    """What ``audit verify`` found (``broken_at`` is None when the chain is intact)."""

    intact: bool
    entries: int
    head_id: int
    head_hash: str
    broken_at: int | None
    reason: str | None


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Recompute the tamper-evident hash chain; exit 1 at the first broken link (local only)."""
    from racefree.core import audit

    given = modes.local_only(ctx, "audit verify")
    with modes.migrated(given) as runtime, runtime.db.read() as tx:
        report = audit.verify(tx)
    check = ChainCheck(
        intact=report.intact,
        entries=report.entries,
        head_id=report.head_id,
        head_hash=report.head_hash,
        broken_at=report.broken_at,
        reason=report.reason,
    )
    if report.intact:
        # record the head elsewhere: a later verify against it proves nothing up to it was rewritten
        head = f"{report.head_id} {report.head_hash}"
        output.show_value(
            given, f"audit chain intact: {report.entries} entries; head {head}", check
        )
        return
    where = f"broken at entry {report.broken_at}" if report.broken_at is not None else "broken"
    output.show_value(given, f"audit chain {where}", check)
    raise CliError(
        f"audit chain {where}: {report.reason}; {report.entries} entries verified up to"
        f" {report.head_id} {report.head_hash}"
    )


def newest(client: Client, limit: int, event_type: str | None) -> list[models.AuditEntry]:
    first = forward(client, 0, event_type, pages=1)
    if len(first) < PAGE:  # the whole (matching) log fits one page
        return first[-limit:]
    top = newest_id(client)
    window = max(limit, PAGE)
    while True:
        start = max(0, top - window)
        found = forward(client, start, event_type)
        if len(found) >= limit or start == 0:
            return found[-limit:]
        window *= 8


def forward(
    client: Client, after_id: int, event_type: str | None, pages: int | None = None
) -> list[models.AuditEntry]:
    """Matching entries after ``after_id``, oldest first, up to ``pages`` pages (all)."""
    found: list[models.AuditEntry] = []
    while pages is None or pages > 0:
        page = client.audit.list(after_id=after_id, limit=PAGE, event_type=event_type)
        found.extend(page.entries)
        if len(page.entries) < PAGE:
            break
        after_id = page.next_after_id
        pages = None if pages is None else pages - 1
    return found


def newest_id(client: Client) -> int:
    """The highest audit id (0 for an empty log), in O(log id) requests."""

    def above(cursor: int) -> bool:
        return bool(client.audit.list(after_id=cursor, limit=1).entries)

    low, high = 0, 1  # invariant: an entry above ``low``; none above ``high`` once found
    if not above(low):
        return 0
    while above(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if above(middle) else (low, middle)
    return high
