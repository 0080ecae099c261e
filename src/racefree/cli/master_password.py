"""``racefree master-password rotate``: replace the master password (local only)."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated

import typer
from pydantic import BaseModel

from racefree.cli import modes, output
from racefree.cli.failures import CliError
from racefree.cli.kill_switch import master_password

app = typer.Typer(help="The master password (local only).", no_args_is_help=True)

NEW_MASTER_PASSWORD_ENV = "RACEFREE_NEW_MASTER_PASSWORD"  # noqa: S105 - a variable name


class Rotated(BaseModel):
    rotated: bool
    #: the generated new password (``--generate`` only), shown this once
    master_password: str | None = None


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    generate: Annotated[
        bool, typer.Option("--generate", help="generate the new password and print it once")
    ] = False,
) -> None:
    """Replace the master password (needs the current one).

    The current password comes from $RACEFREE_MASTER_PASSWORD or a prompt; the new
    one from $RACEFREE_NEW_MASTER_PASSWORD, a prompt, or --generate (printed once).
    """
    from racefree import operators

    given = modes.local_only(ctx, "master-password rotate")
    current = master_password()
    new = _new_master_password(generate)
    with modes.migrated(given) as runtime:
        operators.rotate_master_password(
            runtime.db, current, new, now=runtime.clock.now(), actor="cli"
        )
    if generate:
        output.show_value(given, new, Rotated(rotated=True, master_password=new))
    elif given.json:  # a script asked for JSON: the object, never the password it chose
        output.write(output.as_json(Rotated(rotated=True)))
    else:
        sys.stderr.write("racefree: master password rotated\n")


def _new_master_password(generate: bool) -> str:
    from racefree.core.passwords import generate_password

    if generate:
        return generate_password()
    from_env = os.environ.get(NEW_MASTER_PASSWORD_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise CliError(
            f"no new master password: set {NEW_MASTER_PASSWORD_ENV}, use --generate "
            "or run in a terminal"
        )
    first = getpass.getpass("new master password: ")
    if getpass.getpass("again: ") != first:
        raise CliError("the two new passwords differ")
    return first
