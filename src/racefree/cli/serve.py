"""``racefree serve``: migrate, create first-start credentials (printed once), serve HTTP."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

from racefree.cli import modes, output
from racefree.cli.failures import CliError

if TYPE_CHECKING:
    from racefree import operators
    from racefree.runtime import Runtime
    from racefree.settings import Settings

#: Seconds ``serve`` waits for requests in flight after SIGTERM.
GRACEFUL_SHUTDOWN_S = 3
#: how long a starting server keeps preparing a PostgreSQL database that drops its
#: connections (a failover, an administrator terminating backends) before it gives up
PREPARE_DEADLINE_S = 15.0


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="bind address (default: $RACEFREE_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default: $RACEFREE_PORT or 8000)")] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="server processes (more than one needs PostgreSQL)"),
    ] = 1,
) -> None:
    """Migrate the database, create first-start credentials (printed once), serve the API.

    One process per SQLite file; use PostgreSQL for several (--workers N).
    """
    from racefree import logs
    from racefree.core.db import Dialect
    from racefree.runtime import Runtime
    from racefree.transactions.plugins import load_executor

    given = modes.local_only(ctx, "serve")
    settings = modes.settings(given, host=host, port=port)
    logs.configure(settings.log_format, settings.log_level)
    runtime = Runtime.open(settings)
    try:
        if workers > 1 and runtime.db.dialect is Dialect.SQLITE:
            raise CliError(
                f"--workers {workers} needs PostgreSQL: SQLite supports one serving process."
                " Set RACEFREE_DATABASE_URL=postgresql://... or serve with --workers 1"
            )
        runtime.db.claim_server()
        # bind before anything is created: a port in use must not print (or store)
        # first-start credentials that nobody can then use
        listener = _bind(settings.host, settings.port)
        load_executor(runtime.db, runtime.clock, settings)  # a bad RACEFREE_EXECUTOR: say so now
        _prepare_through_drops(runtime, settings)
        if workers == 1:
            _serve_one(runtime, settings, listener)
            return
    finally:
        runtime.close()
    # several processes: each builds its own runtime and app from the environment, which
    # the command line's overrides are written into first (the first start is done above)
    for name in ("database_url", "host", "port"):
        os.environ[f"RACEFREE_{name.upper()}"] = str(getattr(settings, name))
    _serve_many(settings, workers, listener)


def _uvicorn(settings: Settings) -> dict[str, Any]:
    """uvicorn's options; logging stays ours (:mod:`racefree.logs`: one format, escaped)."""
    return {
        "log_level": settings.log_level.lower(),
        "log_config": None,
        "access_log": False,  # racefree.access logs each request with its route template
        # requests stuck on a gone database and open event streams (which never end by
        # themselves) must not hold SIGTERM
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def _serve_one(runtime: Runtime, settings: Settings, listener: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(_app_with_workers(runtime), **_uvicorn(settings))
    uvicorn.Server(config).run(sockets=[listener])


def _serve_many(settings: Settings, workers: int, listener: socket.socket) -> None:
    """``workers`` processes on the socket bound above (uvicorn's supervisor)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        f"{__name__}:worker_app", factory=True, workers=workers, **_uvicorn(settings)
    )
    Multiprocess(config, sockets=[listener]).run()


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one clear error (port in use, address not available)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _prepare_through_drops(runtime: Runtime, settings: Settings) -> None:
    """:func:`_prepare`, again while PostgreSQL drops the connection under it, for up to
    :data:`PREPARE_DEADLINE_S`: each of its steps is idempotent (migrations run in
    transactions, first-start claims are insert-if-absent), so a retry repeats nothing."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    retrying = Retrying(
        retry=retry_if_exception(_dropped),
        stop=stop_after_delay(PREPARE_DEADLINE_S),
        wait=wait_exponential(multiplier=0.2, max=2),
        before_sleep=lambda state: logging.getLogger("racefree").warning(
            "preparing the database failed (%s); trying again",
            state.outcome.exception() if state.outcome else None,
        ),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            _prepare(runtime, settings)


def _dropped(exc: BaseException) -> bool:
    """A PostgreSQL connection lost or refused (SQLite's errors are not transient here)."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from racefree.core.exceptions import DatabaseUnavailable

    cause = exc.orig if isinstance(exc, DBAPIError) else exc  # alembic's, through SQLAlchemy
    return isinstance(cause, psycopg.OperationalError | DatabaseUnavailable)


def _prepare(runtime: Runtime, settings: Settings) -> None:
    """Migrate, create first-start credentials (printed once), store the policy, warn."""
    from racefree import migrations, operators
    from racefree.killswitch import policy

    migrations.upgrade(runtime.db)
    master = settings.master_password.get_secret_value() if settings.master_password else None
    _warn_if_master_password_ignored(runtime, master)
    first = operators.bootstrap(runtime.db, master_password=master, now=runtime.clock.now())
    policy.current(runtime.db, settings, now=runtime.clock.now())  # stored at first start
    _show_first_start(first)
    _seed_rules(runtime)  # first start only: the default AutoStop rules
    _warn_if_locked(runtime)


def _seed_rules(runtime: Runtime) -> None:
    """The default AutoStop rules, on the first start only (a no-op once seeded)."""
    from racefree.autostop import rules

    with runtime.db.write() as tx:
        rules.seed_defaults(
            tx, now=runtime.clock.now(), daily_max=runtime.settings.auto_stop_seed_daily_max
        )


def _app_with_workers(runtime: Runtime) -> Any:
    from racefree.http import create_app
    from racefree.workers import start_workers

    workers = start_workers(runtime)  # background sweeps, one process each (a lease)
    app = create_app(runtime)
    # stop (and release the leases) at app shutdown: uvicorn re-raises SIGTERM after it,
    # which ends the process before a ``finally`` of the caller would run
    app.router.on_shutdown.append(workers.stop)
    app.router.on_shutdown.append(runtime.close)
    return app


def worker_app() -> Any:
    """The app of one ``racefree serve --workers N`` process (a uvicorn factory)."""
    from racefree import logs
    from racefree.runtime import Runtime
    from racefree.settings import Settings

    settings = Settings()
    logs.configure(settings.log_format, settings.log_level)
    return _app_with_workers(Runtime.open(settings))


def _warn_if_master_password_ignored(runtime: Runtime, master: str | None) -> None:
    """RACEFREE_MASTER_PASSWORD counts at first start only; say so when it is set later."""
    from racefree import operators

    if master is None:
        return
    with runtime.db.read() as tx:
        stored = operators.master_password_hash(tx)
    if stored is not None:
        logging.getLogger("racefree").warning(
            "RACEFREE_MASTER_PASSWORD is set but is ignored: the master password was set at "
            "first start (change it with `racefree master-password rotate`)"
        )


def _warn_if_locked(runtime: Runtime) -> None:
    from racefree import killswitch

    with runtime.db.read() as tx:
        current = killswitch.read(tx)
    if not current.is_normal:
        logging.getLogger("racefree").warning(
            "kill switch is %s (reason: %s): serving only the allow-list until recovery",
            current.state,
            current.reason,
        )


def _show_first_start(first: operators.FirstStart) -> None:
    if first.master_password is None and first.operator_token is None:
        return
    output.write("racefree: first start. Save these now; they are shown only this once.")
    if first.master_password is not None:
        output.write(f"  master password: {first.master_password}")
    if first.operator_token is not None:
        output.write(f"  operator token:  {first.operator_token}")
