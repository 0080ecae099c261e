"""``racefree transactions``: list, show, approve (the owner's signature), reject."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from racefree.cli import modes, output, shapes
from racefree.cli.failures import UsageError
from racefree.client import OwnerSigner, models, signing

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.runtime import Runtime

app = typer.Typer(help="Transactions: list, show, approve, reject.", no_args_is_help=True)

ACTOR = "cli"
COLUMNS = (
    ("TRANSACTION", "transaction_id"),
    ("AGENT", "agent_id"),
    ("AMOUNT", "amount"),
    ("DESTINATION", "destination"),
    ("STATUS", "status"),
    ("TIER", "tier"),
    ("ERROR", "error"),
    ("CREATED", "created_at"),
)

TransactionId = Annotated[str, typer.Argument(help="the transaction's id")]
KeyFile = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        dir_okay=False,
        help="a file holding the owner's Ed25519 private key (base64url): signs a fresh nonce",
    ),
]
Signature = Annotated[
    str | None,
    typer.Option(help=f"a ready {signing.HEADER} value (over a nonce from GET /v1/nonce)"),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        models.TransactionStatus | None, typer.Option(help="only this status")
    ] = None,
    agent_id: Annotated[str | None, typer.Option(help="only this agent's")] = None,
    session_id: Annotated[str | None, typer.Option(help="only this session's")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many")] = 100,
    after_id: Annotated[
        str | None, typer.Option(help="the page after this id (next_after_id)")
    ] = None,
) -> None:
    """List transactions in creation order."""

    def local(runtime: Runtime) -> models.TransactionPage:
        from racefree.transactions.machine import Status

        found = runtime.transactions.find(
            agent_id=agent_id,
            session_id=session_id,
            status=Status(status) if status else None,
            after_id=after_id,
            limit=limit,
        )
        return shapes.transaction_page(found, after_id)

    def remote(client: Client) -> models.TransactionPage:
        return client.transactions.list(
            status=status, agent_id=agent_id, session_id=session_id, after_id=after_id, limit=limit
        )

    page = modes.run(ctx, local=local, remote=remote)
    output.show_list(modes.options(ctx), page, page.transactions, COLUMNS)


@app.command("show")
def show(ctx: typer.Context, transaction_id: TransactionId) -> None:
    """Show one transaction."""

    def local(runtime: Runtime) -> models.Transaction:
        return shapes.transaction(runtime.transactions.get(transaction_id))

    def remote(client: Client) -> models.Transaction:
        return client.transactions.get(transaction_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("approve")
def approve(
    ctx: typer.Context,
    transaction_id: TransactionId,
    owner_key_file: KeyFile = None,
    owner_signature: Signature = None,
) -> None:
    """The owner approves a queued APPROVAL transaction; it then executes at once."""
    signer = _signer(owner_key_file, owner_signature)

    def local(runtime: Runtime) -> models.Transaction:
        header = owner_signature or _sign_locally(runtime, signer, transaction_id)
        return shapes.transaction(runtime.transactions.approve(transaction_id, header))

    def remote(client: Client) -> models.Transaction:
        return client.transactions.approve(transaction_id, signer, owner_signature=owner_signature)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("reject")
def reject(ctx: typer.Context, transaction_id: TransactionId) -> None:
    """Reject a queued transaction: QUEUED -> CANCELLED, its reservation released."""

    def local(runtime: Runtime) -> models.Transaction:
        return shapes.transaction(runtime.transactions.reject(transaction_id, actor=ACTOR))

    def remote(client: Client) -> models.Transaction:
        return client.transactions.reject(transaction_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


def load_signer(key_file: Path) -> OwnerSigner:
    """The owner's signer from a file holding the base64url private key."""
    try:
        return OwnerSigner(key_file.read_text().strip())
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read an Ed25519 private key from {key_file}: {exc}") from None


def _signer(key_file: Path | None, signature: str | None) -> OwnerSigner | None:
    if (key_file is None) == (signature is None):
        raise UsageError("give the owner's --owner-key-file or an --owner-signature (one)")
    return load_signer(key_file) if key_file is not None else None


def _sign_locally(runtime: Runtime, signer: OwnerSigner | None, transaction_id: str) -> str:
    from racefree import owners

    assert signer is not None
    with runtime.db.write() as tx:
        nonce, _ = owners.issue_nonce(tx, now=runtime.clock.now())
    return signer.header(signing.approve_action(transaction_id), nonce)
