"""``racefree rules``: AutoStop rules -- list, set (create or replace), delete."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from racefree.cli import modes, output, shapes
from racefree.cli.failures import UsageError
from racefree.client import models

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.runtime import Runtime

app = typer.Typer(
    help="AutoStop rules: list, set (one per type and scope: global or an agent's), delete.",
    no_args_is_help=True,
)

ACTOR = "cli"
COLUMNS = (
    ("ID", "id"),
    ("SCOPE", "scope"),
    ("AGENT", "agent_id"),
    ("TYPE", "type"),
    ("ACTION", "action"),
    ("ENABLED", "enabled"),
    ("PARAMS", "params"),
    ("VERSION", "version"),
)


@app.command("list")
def list_(
    ctx: typer.Context,
    agent_id: Annotated[str | None, typer.Option(help="only this agent's own rules")] = None,
) -> None:
    """The rules, global ones first (or one agent's own)."""

    def local(runtime: Runtime) -> models.AutoStopRuleList:
        from racefree.autostop import rules

        with runtime.db.read() as tx:
            found = rules.list_rules(tx, agent_id=agent_id)
        return models.AutoStopRuleList(rules=[shapes.rule(r) for r in found])

    def remote(client: Client) -> models.AutoStopRuleList:
        return client.auto_stop.list(agent_id=agent_id)

    found = modes.run(ctx, local=local, remote=remote)
    output.show_list(modes.options(ctx), found, found.rules, COLUMNS)


@app.command("set")
def set_(
    ctx: typer.Context,
    rule_type: Annotated[
        models.AutoStopRuleType, typer.Argument(metavar="TYPE", help="the rule's type")
    ],
    agent_id: Annotated[str | None, typer.Option(help="the agent (default: a global rule)")] = None,
    action: Annotated[
        models.AutoStopAction, typer.Option(help="what crossing the threshold does")
    ] = "SUSPEND_AGENT",
    params: Annotated[
        str | None,
        typer.Option(help="all parameters as JSON, e.g. '{\"threshold\": 5}'", metavar="JSON"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="one parameter (repeatable; the value read as JSON when it is)",
            metavar="KEY=VALUE",
        ),
    ] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="store it disabled (an agent's exemption)")
    ] = False,
) -> None:
    """Set the rule of TYPE, globally or for one agent, replacing the existing one."""
    values = parse_params(params, param or [])

    def local(runtime: Runtime) -> models.AutoStopRule:
        from racefree.autostop import rules
        from racefree.http.routes.autostop import SetRule

        body = modes.body(
            SetRule,
            type=rule_type,
            params=values,
            action=action,
            agent_id=agent_id,
            enabled=not disabled,
        )
        checked = rules.parse_params(body.type, body.params)
        with runtime.db.write() as tx:
            rule, _ = rules.put(
                tx,
                agent_id=body.agent_id,
                rule_type=body.type,
                params=checked,
                action=body.action,
                enabled=body.enabled,
                now=runtime.clock.now(),
                actor=ACTOR,
            )
        return shapes.rule(rule)

    def remote(client: Client) -> models.AutoStopRule:
        return client.auto_stop.set(
            rule_type, values, action=action, agent_id=agent_id, enabled=not disabled
        )

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("delete")
def delete(
    ctx: typer.Context,
    rule_id: Annotated[str, typer.Argument(help="the id shown by `racefree rules list`")],
) -> None:
    """Delete a rule (a deleted global rule stops applying to every agent)."""

    def local(runtime: Runtime) -> models.Deleted:
        from racefree.autostop import rules

        with runtime.db.write() as tx:
            rules.delete(tx, rule_id, now=runtime.clock.now(), actor=ACTOR)
        return models.Deleted(id=rule_id, deleted=True)

    def remote(client: Client) -> models.Deleted:
        return client.auto_stop.delete(rule_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


def parse_params(given: str | None, pairs: list[str]) -> dict[str, Any]:
    """``--params JSON`` and/or ``--param key=value`` (values read as JSON when they can be)."""
    values: dict[str, Any] = {}
    if given:
        try:
            values = json.loads(given)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--params is not JSON: {exc}") from None
        if not isinstance(values, dict):
            raise UsageError("--params must be a JSON object")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    return values
