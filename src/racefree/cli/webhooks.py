"""``racefree webhooks``: where events are sent -- list, add (its secret shown once), remove.

``add`` takes the target as an argument, not ``--url``: ``--url`` is the global
option that picks remote mode. In local mode a running server's deliverer picks
a new webhook up at its next poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from racefree.cli import modes, output, shapes
from racefree.cli.failures import CliError
from racefree.client import models

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.http.routes.webhooks import CreateWebhook
    from racefree.runtime import Runtime

app = typer.Typer(
    help="Webhooks (events out, signed per Standard Webhooks): list, add, remove.",
    no_args_is_help=True,
)

ACTOR = "cli"
COLUMNS = (
    ("ID", "id"),
    ("URL", "url"),
    ("TYPES", "event_types"),
    ("STATUS", "status"),
    ("FAILURES", "failures"),
    ("LAST EVENT", "last_event_id"),
    ("DISABLED BECAUSE", "disabled_reason"),
)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The webhooks (never their secrets)."""

    def local(runtime: Runtime) -> models.WebhookList:
        from racefree.events import webhooks

        with runtime.db.read() as tx:
            found = webhooks.list_all(tx)
        return models.WebhookList(webhooks=[shapes.webhook(h) for h in found])

    def remote(client: Client) -> models.WebhookList:
        return client.webhooks.list()

    found = modes.run(ctx, local=local, remote=remote)
    output.show_list(modes.options(ctx), found, found.webhooks, COLUMNS)


@app.command("add")
def add(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET_URL",
            help="where to POST events (its host in $RACEFREE_WEBHOOK_ALLOWED_HOSTS)",
        ),
    ],
    types: Annotated[str, typer.Option(help="comma-separated event types ('*': every type)")] = "*",
) -> None:
    """Add a webhook; prints it with its signing secret, shown only this once."""
    event_types = split_types(types) or ["*"]

    def local(runtime: Runtime) -> models.CreatedWebhook:
        from racefree.events import secrets, targets, webhooks

        body = _checked(target, event_types)  # as the API checks its body
        targets.check(body.url, targets.allowed_hosts(runtime.settings.webhook_allowed_hosts))
        now = runtime.clock.now()
        with runtime.db.write() as tx:
            box = secrets.box(tx, runtime.settings, now=now)
            hook, secret = webhooks.create(
                tx, box, url=body.url, event_types=body.event_types, now=now, actor=ACTOR
            )
        return shapes.created_webhook(hook, secret)

    def remote(client: Client) -> models.CreatedWebhook:
        return client.webhooks.create(target, event_types)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("remove")
def remove(
    ctx: typer.Context,
    webhook_id: Annotated[str, typer.Argument(help="the id shown by `racefree webhooks list`")],
) -> None:
    """Delete a webhook and its delivery history."""

    def local(runtime: Runtime) -> models.Deleted:
        from racefree.events import webhooks

        with runtime.db.write() as tx:
            webhooks.delete(tx, webhook_id, now=runtime.clock.now(), actor=ACTOR)
        return models.Deleted(id=webhook_id, deleted=True)

    def remote(client: Client) -> models.Deleted:
        return client.webhooks.delete(webhook_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


def _checked(target: str, event_types: list[str]) -> CreateWebhook:
    """The body ``POST /v1/webhooks`` would get, checked by the route's own model."""
    from pydantic import ValidationError

    from racefree.http.routes.webhooks import CreateWebhook

    try:
        return CreateWebhook(url=target, event_types=event_types)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise CliError(f"VALIDATION_ERROR: {where}: {problem['msg']}") from None


def split_types(raw: str | None) -> list[str]:
    """``A,B`` -> ``["A", "B"]`` (blanks dropped)."""
    return [t.strip() for t in (raw or "").split(",") if t.strip()]
