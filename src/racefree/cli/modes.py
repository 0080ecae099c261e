"""Local mode (the database, through the domain) and remote mode (a server, through the client).

A command gives :func:`run` one function per mode; which one runs depends on
the global options: ``--url`` (or ``$RACEFREE_URL``, unless ``--database-url``
is given) means remote. Both return the API's typed models
(:mod:`racefree.client.models`), so what is printed cannot tell the modes apart.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from racefree.cli.exits import ExitCode
from racefree.cli.failures import CliError, UsageError
from racefree.cli.options import Globals
from racefree.client import Client, RetryPolicy

if TYPE_CHECKING:  # the server's modules load in local mode only
    from racefree.runtime import Runtime
    from racefree.settings import Settings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

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


def open_runtime(config: Settings, *, create: bool = False) -> Runtime:
    """The runtime on ``config``'s database, or one line on what is wrong with the URL.

    A SQLite file that does not exist is created only when ``create`` (``db upgrade``):
    a mistyped path must not leave an empty database behind a read.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from racefree.core.db import redact
    from racefree.runtime import Runtime

    url = config.database_url
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # a bad URL exits as an unsupported one does (the database cannot be used)
        raise CliError(
            "the database URL cannot be parsed: use sqlite:///path or postgresql://...",
            exit_code=ExitCode.UNAVAILABLE,
        ) from None
    backend = parsed.get_backend_name()
    path = parsed.database or ""
    file_db = backend == "sqlite" and path not in ("", ":memory:")
    if file_db and not create and not os.path.exists(path):
        raise CliError(
            f"no database at {os.path.abspath(path)}: run `racefree db upgrade` to create"
            " it (or check --database-url / RACEFREE_DATABASE_URL)"
        )
    try:
        return Runtime.open(config)
    except sqlite3.Error as exc:
        raise CliError(
            f"cannot open the database {redact(url)}: {exc}", exit_code=ExitCode.UNAVAILABLE
        ) from None


def body(model: type[M], **values: Any) -> M:
    """``values`` checked as the API checks the body of ``model`` (control characters, then
    the model), so local mode refuses what a server refuses, with the same 400."""
    from racefree.http.pipeline import validated

    return validated(model, {k: v for k, v in values.items() if v is not None})


@contextlib.contextmanager
def migrated(given: Globals) -> Iterator[Runtime]:
    """The runtime of a command that needs the schema at head; closed when it ends."""
    from racefree import migrations

    runtime = open_runtime(settings(given))
    try:
        if migrations.current_revision(runtime.db) != migrations.head_revision():
            raise CliError("the database schema is not up to date: run `racefree db upgrade` first")
        yield runtime
    finally:
        runtime.close()
