"""``racefree agents``: create, list, show, suspend, activate, deposit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from racefree.cli import modes, output, shapes
from racefree.client import models

if TYPE_CHECKING:
    from racefree.client import Client
    from racefree.runtime import Runtime

app = typer.Typer(
    help="Agents: create, list, show, suspend, activate, deposit.", no_args_is_help=True
)

ACTOR = "cli"
COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("BALANCE", "balance"),
    ("OWNER", "owner.state"),
    ("SUSPENSION", "suspension_reason"),
    ("CREATED", "created_at"),
)

AgentId = Annotated[str, typer.Argument(help="the agent's id")]
Status = Annotated[models.AgentStatus | None, typer.Option(help="only agents in this status")]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="at most this many")]
AfterId = Annotated[str | None, typer.Option(help="the page after this id (next_after_id)")]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="the agent's name")],
    owner_public_key: Annotated[
        str | None, typer.Option(help="an owner's Ed25519 public key (base64url): starts in GRACE")
    ] = None,
) -> None:
    """Create an ACTIVE agent."""

    def local(runtime: Runtime) -> models.Agent:
        from racefree import agents, owners
        from racefree.http.routes.agents import CreateAgent

        checked = modes.body(CreateAgent, name=name, owner_public_key=owner_public_key)
        now = runtime.clock.now()
        with runtime.db.write() as tx:
            agent = agents.create(tx, name=checked.name, now=now, actor=ACTOR)
            if checked.owner_public_key is not None:
                owners.change_owner(tx, agent.id, checked.owner_public_key, now=now, actor=ACTOR)
                agent = agents.get(tx, agent.id)
        return shapes.agent(agent)

    def remote(client: Client) -> models.Agent:
        return client.agents.create(name, owner_public_key=owner_public_key)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("list")
def list_(
    ctx: typer.Context, status: Status = None, limit: Limit = 100, after_id: AfterId = None
) -> None:
    """List agents, oldest first."""

    def local(runtime: Runtime) -> models.AgentPage:
        from racefree import agents

        with runtime.db.read() as tx:
            found = agents.list_agents(tx, after_id=after_id, limit=limit, status=status)
        return shapes.agent_page(found, after_id)

    def remote(client: Client) -> models.AgentPage:
        return client.agents.list(status=status, after_id=after_id, limit=limit)

    page = modes.run(ctx, local=local, remote=remote)
    output.show_list(modes.options(ctx), page, page.agents, COLUMNS)


@app.command("show")
def show(ctx: typer.Context, agent_id: AgentId) -> None:
    """Show one agent."""

    def local(runtime: Runtime) -> models.Agent:
        from racefree import agents

        with runtime.db.read() as tx:
            return shapes.agent(agents.get(tx, agent_id))

    def remote(client: Client) -> models.Agent:
        return client.agents.get(agent_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("suspend")
def suspend(ctx: typer.Context, agent_id: AgentId) -> None:
    """ACTIVE -> SUSPENDED: its sessions stop authenticating until it is activated."""

    def local(runtime: Runtime) -> models.Agent:
        from racefree import agents

        with runtime.db.write() as tx:
            return shapes.agent(agents.suspend(tx, agent_id, now=runtime.clock.now(), actor=ACTOR))

    def remote(client: Client) -> models.Agent:
        return client.agents.suspend(agent_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("activate")
def activate(ctx: typer.Context, agent_id: AgentId) -> None:
    """SUSPENDED -> ACTIVE (refused while the kill switch is engaged)."""

    def local(runtime: Runtime) -> models.Agent:
        from racefree import agents

        with runtime.db.write() as tx:
            return shapes.agent(agents.activate(tx, agent_id, now=runtime.clock.now(), actor=ACTOR))

    def remote(client: Client) -> models.Agent:
        return client.agents.activate(agent_id)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))


@app.command("deposit")
def deposit(
    ctx: typer.Context,
    agent_id: AgentId,
    amount: Annotated[int, typer.Argument(min=1, help="minor units (an integer)")],
) -> None:
    """Add AMOUNT to the agent's balance; prints the new balance."""

    def local(runtime: Runtime) -> models.Balance:
        from racefree import agents

        with runtime.db.write() as tx:
            new = agents.deposit(tx, agent_id, amount, now=runtime.clock.now(), actor=ACTOR)
        return shapes.balance(agent_id, new)

    def remote(client: Client) -> models.Balance:
        return client.agents.deposit(agent_id, amount)

    output.show(modes.options(ctx), modes.run(ctx, local=local, remote=remote))
