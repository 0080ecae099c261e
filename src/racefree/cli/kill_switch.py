"""``racefree kill-switch``: status, activate, nonce, and the two-step recovery."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from racefree.cli import modes, output, shapes
from racefree.cli.failures import UsageError
from racefree.cli.transactions import load_signer
from racefree.client import OwnerSigner, models, signing

if TYPE_CHECKING:
    from pydantic import BaseModel

    from racefree.client import Client
    from racefree.runtime import Runtime

HELP = (
    "The emergency stop. Local mode changes the database directly (every running server"
    " sees it at its next request, because the guard reads the state from the database);"
    " with --url it goes through a server's API."
)
app = typer.Typer(help=HELP, no_args_is_help=True)

DEFAULT_ACTOR = "cli"
MASTER_PASSWORD_ENV = "RACEFREE_MASTER_PASSWORD"  # noqa: S105 - the variable's name


@app.command("status")
def status(ctx: typer.Context) -> None:
    """The state and the activation it is under, if any."""

    def local(runtime: Runtime) -> models.KillSwitch:
        from racefree import killswitch

        with runtime.db.read() as tx:
            current = killswitch.read(tx)
        return shapes.kill_switch(current, runtime.clock.now())

    def remote(client: Client) -> models.KillSwitch:
        return client.kill_switch.status()

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("activate")
def activate(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="why (recorded and shown to clients)")],
    actor: Annotated[
        str | None,
        typer.Option(help="who, for the audit log (local mode; a server records the operator)"),
    ] = None,
) -> None:
    """Stop everything: revoke sessions, cancel open transactions, suspend agents."""
    if actor is not None and modes.options(ctx).server is not None:
        raise UsageError("--actor is for local mode: a server records the operator's label")

    def local(runtime: Runtime) -> models.Activation:
        from racefree import killswitch
        from racefree.http.routes.killswitch import ActivateRequest

        checked = modes.body(ActivateRequest, reason=reason)
        result = killswitch.activate_now(
            runtime.db, checked.reason, now=runtime.clock.now(), actor=actor or DEFAULT_ACTOR
        )
        return shapes.activation(result)

    def remote(client: Client) -> models.Activation:
        return client.kill_switch.activate(reason)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("nonce")
def nonce(ctx: typer.Context) -> None:
    """A single-use nonce for an owner to sign a recovery with (action kill_switch_recovery)."""

    def local(runtime: Runtime) -> models.Nonce:
        from racefree import owners

        with runtime.db.write() as tx:
            value, expires_at = owners.issue_nonce(tx, now=runtime.clock.now())
        return shapes.nonce(value, expires_at)

    def remote(client: Client) -> models.Nonce:
        return client.kill_switch.nonce()

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


Step = Literal["start", "complete", "abort"]


@app.command("recover")
def recover(
    ctx: typer.Context,
    step: Annotated[
        Step,
        typer.Argument(
            help="start (ACTIVATED -> RECOVERING), complete (-> NORMAL, after the wait)"
            " or abort (-> ACTIVATED)"
        ),
    ],
    owner_signature: Annotated[
        str | None,
        typer.Option(
            help=f"a ready {signing.HEADER} value over a nonce from `racefree kill-switch nonce`,"
            " needed to start when any agent has a LOCKED owner"
        ),
    ] = None,
    owner_key_file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="or a file holding that owner's Ed25519 private key (base64url)",
        ),
    ] = None,
) -> None:
    """Two-step recovery behind the master password ($RACEFREE_MASTER_PASSWORD or a prompt)."""
    if step != "start" and (owner_signature or owner_key_file):
        raise UsageError("an owner signature is only for `recover start`")
    signer = load_signer(owner_key_file) if owner_key_file is not None else None
    password = master_password()

    def local(runtime: Runtime) -> BaseModel:
        return _recover_locally(runtime, step, password, owner_signature, signer)

    def remote(client: Client) -> BaseModel:
        switch = client.kill_switch
        if step == "start":
            return switch.start_recovery(password, signer=signer, owner_signature=owner_signature)
        if step == "complete":
            return switch.complete_recovery(password)
        return switch.abort_recovery(password)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


def master_password() -> str:
    """``$RACEFREE_MASTER_PASSWORD``, else asked for on the terminal."""
    given = os.environ.get(MASTER_PASSWORD_ENV)
    if given:
        return given
    if not sys.stdin.isatty():
        raise UsageError(f"no master password: set {MASTER_PASSWORD_ENV} or run in a terminal")
    return getpass.getpass("master password: ")


def _recover_locally(
    runtime: Runtime,
    step: Step,
    password: str,
    owner_signature: str | None,
    signer: OwnerSigner | None,
) -> BaseModel:
    from racefree.killswitch import recovery

    now = runtime.clock.now()
    if step == "complete":
        return shapes.recovery_completed(
            recovery.complete(runtime.db, password, now=now, actor=DEFAULT_ACTOR)
        )
    if step == "abort":
        return shapes.recovery_aborted(
            recovery.abort(runtime.db, password, now=now, actor=DEFAULT_ACTOR)
        )
    if signer is not None:
        owner_signature = _sign(runtime, signer)
    # the server's stored policy: this command's environment never shortens a stored wait
    started = recovery.start(
        runtime.db,
        password,
        now=now,
        wait_s=runtime.settings.recovery_wait_s,
        owner_wait_s=runtime.settings.recovery_wait_owner_s,
        owner_signature=owner_signature,
        actor=DEFAULT_ACTOR,
    )
    return shapes.recovery_started(started)


def _sign(runtime: Runtime, signer: OwnerSigner) -> str:
    from racefree import owners

    with runtime.db.write() as tx:
        value, _ = owners.issue_nonce(tx, now=runtime.clock.now())
    return signer.header(signing.RECOVERY_ACTION, value)
