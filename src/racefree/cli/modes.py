"""Local mode (the database, through the domain) and remote mode (a server, through the client).

A command gives :func:`run` one function per mode; which one runs depends on
the global options: ``--url`` (or ``$RACEFREE_URL``, unless ``--database-url``
is given) means remote. Both return the API's typed models
(:mod:`racefree.client.models`), so what is printed cannot tell the modes apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import ValidationError

from racefree.cli.failures import CliError, UsageError
from racefree.cli.options import Globals
from racefree.client import Client, RetryPolicy

if TYPE_CHECKING:  # the server's modules load in local mode only
    from racefree.runtime import Runtime
    from racefree.settings import Settings

T = TypeVar("T")

#: A command line fails fast: a few seconds of retries, not the client's default 30.
RETRY = RetryPolicy(deadline=10.0, attempt_timeout=10.0)


def options(ctx: typer.Context) -> Globals:
    found = ctx.find_root().obj
    return found if isinstance(found, Globals) else Globals()


def run(ctx: typer.Context, *, local: Callable[[Runtime], T], remote: Callable[[Client], T]) -> T:
    """``remote(client)`` against the server, or ``local(runtime)`` on the database."""
    given = options(ctx)
    server = given.server
    if server is not None:
        with make_client(server, given.credential) as client:
            return remote(client)
    with migrated(given) as runtime:
        return local(runtime)


def local_only(ctx: typer.Context, command: str) -> Globals:
    """Refuse ``--url`` for a command the API has no route for; the options otherwise."""
    given = options(ctx)
    if given.url is not None:
        raise UsageError(
            f"`racefree {command}` works on the database directly and has no remote mode:"
            " drop --url (use --database-url or RACEFREE_DATABASE_URL)"
        )
    return given


def make_client(base_url: str, token: str | None) -> Client:
    """The client of remote mode (tests replace it to talk to a stub)."""
    return Client(base_url, token, retry=RETRY)


def settings(given: Globals, **overrides: Any) -> Settings:
    """The server's settings, with the command line's overrides."""
    from racefree.settings import Settings

    if given.database_url is not None:
        overrides["database_url"] = given.database_url
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise UsageError(f"invalid setting {where}: {problem['msg']}") from None


@contextlib.contextmanager
def migrated(given: Globals) -> Iterator[Runtime]:
    """The runtime of a command that needs the schema at head; closed when it ends."""
    from racefree import migrations
    from racefree.runtime import Runtime

    runtime = Runtime.open(settings(given))
    try:
        if migrations.current_revision(runtime.db) != migrations.head_revision():
            raise CliError("the database schema is not up to date: run `racefree db upgrade` first")
        yield runtime
    finally:
        runtime.close()
