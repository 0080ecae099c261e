"""``racefree operator``: operator tokens -- create (the token shown once), list, revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from racefree.cli import modes, output, shapes
from racefree.client import models

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.runtime import Runtime

app = typer.Typer(
    help="Operator tokens: create-token, list, revoke (remote: /v1/operators).",
    no_args_is_help=True,
)

ACTOR = "cli"
COLUMNS = (("ID", "id"), ("LABEL", "label"), ("CREATED", "created_at"))


@app.command("create-token")
def create_token(
    ctx: typer.Context,
    label: Annotated[str, typer.Option(help="a name for the token's holder")] = "cli",
) -> None:
    """Create an operator token and print only the token (so scripts can capture it)."""

    def local(runtime: Runtime) -> models.CreatedOperator:
        from racefree import operators
        from racefree.http.routes.operators import CreateOperator

        checked = modes.body(CreateOperator, label=label)
        with runtime.db.write() as tx:
            record, token = operators.create(
                tx, label=checked.label, now=runtime.clock.now(), actor=ACTOR
            )
        return shapes.created_operator(record, token)

    def remote(client: Client) -> models.CreatedOperator:
        return client.operators.create(label)

    created = modes.run(ctx, local=local, remote=remote)
    output.show_value(modes.options(ctx), created.token, created)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List operator tokens: ids and labels, never the tokens."""

    def local(runtime: Runtime) -> models.OperatorList:
        from racefree import operators

        with runtime.db.read() as tx:
            found = operators.list_tokens(tx)
        return models.OperatorList(operators=[shapes.operator(r) for r in found])

    def remote(client: Client) -> models.OperatorList:
        return client.operators.list()

    found = modes.run(ctx, local=local, remote=remote)
    output.show_list(modes.options(ctx), found, found.operators, COLUMNS)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    operator_id: Annotated[str, typer.Argument(help="the id shown by `racefree operator list`")],
) -> None:
    """Revoke an operator token: it stops working at once (console sessions end too)."""

    def local(runtime: Runtime) -> models.RevokedOperator:
        from racefree import operators

        now = runtime.clock.now()
        with runtime.db.write() as tx:
            record = operators.revoke(tx, operator_id, now=now, actor=ACTOR)
        return shapes.revoked_operator(record, now)

    def remote(client: Client) -> models.RevokedOperator:
        return client.operators.revoke(operator_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))
