"""The ``racefree`` command tree: the global options and every command group."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from racefree import __version__
from racefree.cli import (
    agents,
    audit,
    db,
    events,
    exits,
    kill_switch,
    locks,
    master_password,
    operators,
    reference,
    rules,
    serve,
    server_settings,
    sessions,
    transactions,
    webhooks,
)
from racefree.cli.failures import UsageError
from racefree.cli.options import TOKEN_ENV, URL_ENV, Globals

app = typer.Typer(
    name="racefree",
    help="Race-free state changes on SQL databases: the server and its operator tools."
    " Commands work on the database directly (local mode) or through a server's API"
    f" with --url (or ${URL_ENV}) and --token (or ${TOKEN_ENV}): same commands, same output.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"racefree {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(help=f"a server's URL: remote mode (default: ${URL_ENV})", metavar="URL"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help=f"the operator token for --url (default: ${TOKEN_ENV})", metavar="TOKEN"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="local mode's database (default: $RACEFREE_DATABASE_URL or"
            " sqlite:///./racefree.db)",
            metavar="URL",
        ),
    ] = None,
    json_output: Annotated[
        bool | None,
        typer.Option(
            "--json/--table",
            help="print JSON (the API's shapes) or a table; default: a table on a terminal,"
            " JSON otherwise",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Global options go before or after the command."""
    if url is not None and database_url is not None:
        raise UsageError("--url (remote) and --database-url (local) exclude each other")
    ctx.obj = Globals(url=url, token=token, database_url=database_url, json=json_output)


app.command("serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(operators.app, name="operator")
app.add_typer(master_password.app, name="master-password")
app.add_typer(server_settings.app, name="settings")
app.add_typer(agents.app, name="agents")
app.command("deposit", help="Add AMOUNT to an agent's balance (= agents deposit).")(agents.deposit)
app.add_typer(sessions.app, name="sessions")
app.add_typer(transactions.app, name="transactions")
app.add_typer(kill_switch.app, name="kill-switch")
app.add_typer(audit.app, name="audit")
app.add_typer(locks.app, name="locks")
app.add_typer(rules.app, name="rules")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(events.app, name="events")
app.command("docs")(reference.docs)
app.command("machines")(reference.machines)


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every runnable command's path (``("agents", "list")``), in the order of ``--help``."""
    children = getattr(command, "commands", None)
    if not isinstance(children, dict):
        return [prefix]
    paths: list[tuple[str, ...]] = []
    for name, child in children.items():
        paths.extend(command_paths(child, (*prefix, name)))
    return paths


def epilog(command: Any) -> str:
    """Every command (grouped), where global options go, and the exit statuses."""
    groups: dict[str, list[str]] = {}
    for path in command_paths(command):
        groups.setdefault(path[0], []).append(" ".join(path[1:]))
    index = "\n".join(
        f"  racefree {name} {'|'.join(subs)}".rstrip() for name, subs in groups.items()
    )
    return (
        f"Every command:\n\n{index}\n\n"
        "Global options (--url, --token, --database-url, --json/--table) are accepted before"
        " or after the command, e.g. racefree agents list --json --url URL.\n\n"
        f"Exit status:\n\n{exits.describe()}"
    )


#: Commands the API has no route for: local mode only (``--url`` is refused).
LOCAL_ONLY = {
    ("serve",),
    ("db", "upgrade"),
    ("sessions", "cleanup"),
    ("locks", "list"),
    ("audit", "verify"),
    ("master-password", "rotate"),
    ("settings", "show"),
    ("settings", "set"),
}
#: Commands that read neither a database nor a server.
OFFLINE = {("docs",), ("machines",)}

BOTH_MODES_NOTE = (
    "Runs on the database directly (--database-url or $RACEFREE_DATABASE_URL), or through"
    f" a server's API with --url and --token (${URL_ENV}, ${TOKEN_ENV}). Global options go"
    " before or after the command; --json prints the API's JSON."
)
LOCAL_NOTE = (
    "Runs on the database directly (--database-url or $RACEFREE_DATABASE_URL): the API has"
    " no route for it, so --url is refused."
)


def build() -> Any:
    """The click command of :data:`app`: every command's help says where it runs, and the
    root's lists every command and the exit statuses."""
    command = typer.main.get_command(app)
    command.epilog = epilog(command)
    for path in command_paths(command):
        if path not in OFFLINE:
            _find(command, path).epilog = LOCAL_NOTE if path in LOCAL_ONLY else BOTH_MODES_NOTE
    return command


def _find(command: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        command = command.commands[name]
    return command
