"""``racefree db upgrade``: the schema, by Alembic (local only)."""

from __future__ import annotations

import typer
from pydantic import BaseModel

from racefree.cli import modes, output

app = typer.Typer(help="The database schema (local only).", no_args_is_help=True)


class Revision(BaseModel):
    revision: str | None


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply the migrations up to the newest schema."""
    from racefree import migrations

    given = modes.local_only(ctx, "db upgrade")
    runtime = modes.open_runtime(modes.settings(given), create=True)
    try:
        migrations.upgrade(runtime.db)
        revision = migrations.current_revision(runtime.db)
    finally:
        runtime.close()
    output.show_value(given, f"database at revision {revision}", Revision(revision=revision))
