"""``racefree locks list``: the held lease locks (local only: the API shows one group's lock)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from racefree.cli import modes, output

app = typer.Typer(help="Lease locks (local only).", no_args_is_help=True)

COLUMNS = (
    ("KEY", "key"),
    ("HOLDER", "holder"),
    ("TOKEN", "token"),
    ("ACQUIRED_MS", "acquired_at_ms"),
    ("EXPIRES_MS", "expires_at_ms"),
    ("TTL_MS", "ttl_ms"),
)


class Lease(BaseModel):
    key: str
    holder: str
    token: int
    acquired_at_ms: int
    expires_at_ms: int
    ttl_ms: int


class LeaseList(BaseModel):
    locks: list[Lease]


@app.command("list")
def list_(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Option(help="only keys starting with this")] = "",
) -> None:
    """The unexpired lease locks: key, holder, fencing token, times."""
    given = modes.local_only(ctx, "locks list")
    with modes.migrated(given) as runtime:
        held: list[dict[str, Any]] = [asdict(lease) for lease in runtime.locks.held(prefix)]
    found = LeaseList.model_validate({"locks": held})
    output.show_list(given, found, found.locks, COLUMNS)
