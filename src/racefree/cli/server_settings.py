"""``racefree settings``: server policy stored in the database (recovery waits; local only)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import BaseModel

from racefree.cli import modes, output
from racefree.cli.kill_switch import master_password

app = typer.Typer(
    help="Server policy stored in the database: the recovery waits (local only).",
    no_args_is_help=True,
)


class Policy(BaseModel):
    wait_s: int
    owner_wait_s: int
    #: False: nothing is stored yet, and these are the waits this environment would store
    #: (the server's first start stores its own)
    stored: bool = True


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the stored policy (stores nothing: the server's first start stores it)."""
    from racefree.killswitch import policy

    given = modes.local_only(ctx, "settings show")
    with modes.migrated(given) as runtime, runtime.db.read() as tx:
        waits = policy.read(tx)
        stored = waits is not None
        if waits is None:
            waits = policy.defaults(runtime.settings)
    output.show(given, Policy(wait_s=waits.wait_s, owner_wait_s=waits.owner_wait_s, stored=stored))


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="recovery_wait_s or recovery_wait_owner_s")],
    value: Annotated[int, typer.Argument(help="seconds")],
) -> None:
    """Change a recovery wait (needs the master password: $RACEFREE_MASTER_PASSWORD or a prompt)."""
    from racefree.killswitch import policy

    given = modes.local_only(ctx, "settings set")
    password = master_password()
    with modes.migrated(given) as runtime:
        waits = policy.set_wait(
            runtime.db,
            runtime.settings,
            name,
            value,
            password,
            now=runtime.clock.now(),
            actor="cli",
        )
    output.show(given, Policy(wait_s=waits.wait_s, owner_wait_s=waits.owner_wait_s))
