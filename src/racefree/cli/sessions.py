"""``racefree sessions``: list and revoke (never showing a token); cleanup (local only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from racefree.cli import modes, output, shapes
from racefree.client import models

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.runtime import Runtime

app = typer.Typer(help="Agent sessions: list, revoke, cleanup.", no_args_is_help=True)

ACTOR = "cli"
COLUMNS = (
    ("SESSION", "session_id"),
    ("AGENT", "agent_id"),
    ("EXPIRES", "expires_at"),
    ("RENEWALS", "renewal_count"),
    ("MAX", "max_renewals"),
    ("SPENT", "spent"),
    ("REVOKED", "revoked_at"),
    ("REASON", "revoke_reason"),
)


@app.command("list")
def list_(
    ctx: typer.Context,
    agent_id: Annotated[str | None, typer.Option(help="only this agent's sessions")] = None,
    active: Annotated[bool, typer.Option("--active", help="only active sessions")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 100,
    after_id: Annotated[
        str | None, typer.Option(help="the page after this id (next_after_id)")
    ] = None,
) -> None:
    """List sessions, oldest first (never their tokens)."""

    def local(runtime: Runtime) -> models.SessionPage:
        from racefree import sessions

        with runtime.db.read() as tx:
            found = sessions.list_sessions(
                tx,
                now=runtime.clock.now(),
                agent_id=agent_id,
                active_only=active,
                after_id=after_id,
                limit=limit,
            )
        return shapes.session_page(found, after_id)

    def remote(client: Client) -> models.SessionPage:
        return client.sessions.list(
            agent_id=agent_id, active=active, after_id=after_id, limit=limit
        )

    page = modes.run(ctx, local=local, remote=remote)
    output.show_list(modes.options(ctx), page, page.sessions, COLUMNS)


@app.command("revoke")
def revoke(
    ctx: typer.Context, session_id: Annotated[str, typer.Argument(help="the session to revoke")]
) -> None:
    """Revoke a session: its token stops working at once."""

    def local(runtime: Runtime) -> models.RevokedSession:
        from racefree import sessions

        with runtime.db.write() as tx:
            found = sessions.revoke(tx, session_id, now=runtime.clock.now(), actor=ACTOR)
        return shapes.revoked_session(found)

    def remote(client: Client) -> models.RevokedSession:
        return client.sessions.revoke(session_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


class Cleanup(models.Model):
    deleted: int


@app.command("cleanup")
def cleanup(
    ctx: typer.Context,
    retention: Annotated[
        int,
        typer.Option(min=0, metavar="SECONDS", help="keep sessions expired less than this long"),
    ] = 0,
) -> None:
    """Delete expired sessions that no transaction references (local only: no API route)."""
    from racefree import sessions

    given = modes.local_only(ctx, "sessions cleanup")
    with modes.migrated(given) as runtime, runtime.db.write() as tx:
        deleted = sessions.cleanup_expired(
            tx, now=runtime.clock.now(), retention_s=retention, actor=ACTOR
        )
    output.show_value(given, f"deleted {deleted} expired sessions", Cleanup(deleted=deleted))
