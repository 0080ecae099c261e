"""The ``racefree`` command.

Commands that change state run against the database named by
``RACEFREE_DATABASE_URL`` (or ``--database-url``) directly; a running server
sees their effects at its next request, because the database is the only
source of truth.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from racefree import (
    __version__,
    agents,
    cli_events,
    killswitch,
    migrations,
    operators,
    owners,
    sessions,
)
from racefree.core import audit
from racefree.core.db import DatabaseError, Dialect
from racefree.core.errors import RacefreeError
from racefree.core.settings import Settings
from racefree.killswitch import recovery
from racefree.runtime import Runtime

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("database_url", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _runtime(args: argparse.Namespace) -> Runtime:
    return Runtime.open(_settings(args))


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# -- commands ------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from racefree import logs

    settings = _settings(args)
    logs.configure(settings.log_level)
    workers = args.workers
    runtime = Runtime.open(settings)
    try:
        if workers > 1 and runtime.db.dialect is Dialect.SQLITE:
            raise CliError(
                f"--workers {workers} needs PostgreSQL: SQLite supports one serving process."
                " Set RACEFREE_DATABASE_URL=postgresql://... or serve with --workers 1"
            )
        runtime.db.claim_server()
        _prepare(runtime, settings)
        if workers == 1:
            return _serve_one(runtime, settings)
    finally:
        runtime.close()
    # several processes: each builds its own runtime and app from the environment, which
    # the command line's overrides are written into first (the first start is done above)
    for name in ("database_url", "host", "port"):
        os.environ[f"RACEFREE_{name.upper()}"] = str(getattr(settings, name))
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **_uvicorn(settings))
    return 0


def _uvicorn(settings: Settings) -> dict[str, Any]:
    """uvicorn's options; logging stays ours (:mod:`racefree.logs` escapes every line)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,
        "access_log": False,
        # open event streams never end by themselves: cut them after 5 s on SIGTERM
        "timeout_graceful_shutdown": 5,
    }


def _prepare(runtime: Runtime, settings: Settings) -> None:
    """Migrate, create first-start credentials (printed once), warn if locked."""
    migrations.upgrade(runtime.db)
    master = settings.master_password.get_secret_value() if settings.master_password else None
    first = operators.bootstrap(runtime.db, master_password=master, now=runtime.clock.now())
    _show_first_start(first)
    cli_events.seed_rules(runtime)  # first start only: the default AutoStop rules
    _warn_if_locked(runtime)


def _serve_one(runtime: Runtime, settings: Settings) -> int:
    import uvicorn

    uvicorn.run(_app_with_workers(runtime), **_uvicorn(settings))
    return 0


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

    settings = Settings()
    logs.configure(settings.log_level)
    return _app_with_workers(Runtime.open(settings))


def _warn_if_locked(runtime: Runtime) -> None:
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
    _emit("racefree: first start. Save these now; they are shown only this once.")
    if first.master_password is not None:
        _emit(f"  master password: {first.master_password}")
    if first.operator_token is not None:
        _emit(f"  operator token:  {first.operator_token}")


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        migrations.upgrade(runtime.db)
        _emit(f"database at revision {migrations.current_revision(runtime.db)}")
    finally:
        runtime.close()
    return 0


def cmd_operator_create_token(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.write() as tx:
            token = operators.create_token(tx, label=args.label, now=runtime.clock.now())
        _emit(token)  # only the token, so scripts can capture it
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from racefree import reference

    for path in reference.write(Path(args.out)):
        _emit(str(path))
    return 0


def cmd_machines(args: argparse.Namespace) -> int:
    from racefree.machines import document

    sys.stdout.write(document())
    return 0


def cmd_audit_tail(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.read() as tx:
            last_id = tx.scalar("SELECT COALESCE(MAX(id), 0) FROM audit_log") or 0
            found = audit.entries(
                tx,
                after_id=max(0, last_id - args.limit),
                limit=args.limit,
                event_type=args.event_type,
            )
        for entry in found:
            _emit(json.dumps(asdict(entry), sort_keys=True))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Recompute the audit hash chain; exit 1 at the first broken link."""
    with _migrated(args) as runtime, runtime.db.read() as tx:
        report = audit.verify(tx)
    if report.intact:
        _emit(
            f"audit chain intact: {report.entries} entries; head {report.head_id}"
            f" {report.head_hash} (record it elsewhere: a later verify against it proves"
            " nothing up to it was rewritten)"
        )
        return 0
    where = f"broken at entry {report.broken_at}" if report.broken_at is not None else "broken"
    _emit(
        f"audit chain {where}: {report.reason}; {report.entries} entries verified up to"
        f" {report.head_id} {report.head_hash}"
    )
    return 1


def _json_line(value: Any) -> str:
    return json.dumps(asdict(value), sort_keys=True, default=str)


def cmd_agents_create(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        now = runtime.clock.now()
        with runtime.db.write() as tx:
            agent = agents.create(tx, name=args.name, now=now, actor="cli")
            if args.owner_public_key:
                owners.change_owner(tx, agent.id, args.owner_public_key, now=now, actor="cli")
                agent = agents.get(tx, agent.id)
        _emit(_json_line(agent))
    return 0


def cmd_agents_list(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.read() as tx:
            found = agents.list_agents(tx, limit=args.limit, status=args.status)
        for agent in found:
            _emit(_json_line(agent))
    return 0


def cmd_sessions_list(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.read() as tx:
            found = sessions.list_sessions(
                tx,
                now=runtime.clock.now(),
                agent_id=args.agent_id,
                active_only=args.active,
                limit=args.limit,
            )
        for session in found:
            _emit(_json_line(session))
    return 0


def cmd_sessions_revoke(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.write() as tx:
            session = sessions.revoke(tx, args.session_id, now=runtime.clock.now(), actor="cli")
        _emit(json.dumps({"session_id": session.id, "revoked_at": session.revoked_at}))
    return 0


def cmd_sessions_cleanup(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.write() as tx:
            deleted = sessions.cleanup_expired(
                tx, now=runtime.clock.now(), retention_s=args.retention, actor="cli"
            )
        _emit(f"deleted {deleted} expired sessions")
    return 0


def cmd_locks_list(args: argparse.Namespace) -> int:

    with _migrated(args) as runtime:
        for lease in runtime.locks.held(args.prefix):
            _emit(json.dumps(asdict(lease), sort_keys=True))
    return 0


# -- kill switch ----------------------------------------------------------------

KILL_SWITCH_HELP = (
    "The kill switch, operated against the database directly (RACEFREE_DATABASE_URL or "
    "--database-url), not through a server: every running server sees the change at its "
    "next request, because the guard reads the state from the database."
)


def _print_json(payload: dict[str, Any]) -> None:
    _emit(json.dumps(payload, sort_keys=True))


def _master_password(settings: Settings) -> str:
    if settings.master_password is not None:
        return settings.master_password.get_secret_value()
    if not sys.stdin.isatty():
        raise CliError("no master password: set RACEFREE_MASTER_PASSWORD or run in a terminal")
    return getpass.getpass("master password: ")


def cmd_kill_switch_status(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.read() as tx:
            current = killswitch.read(tx)
        _print_json(asdict(current))
    return 0


def cmd_kill_switch_activate(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        result = killswitch.activate_now(
            runtime.db, args.reason, now=runtime.clock.now(), actor=args.actor
        )
        _print_json(asdict(result))
    return 0


def cmd_kill_switch_nonce(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        with runtime.db.write() as tx:
            nonce, expires_at = owners.issue_nonce(tx, now=runtime.clock.now())
        _print_json({"nonce": nonce, "action": recovery.OWNER_ACTION, "expires_at": expires_at})
    return 0


def cmd_kill_switch_recover(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime:
        password = _master_password(runtime.settings)
        now = runtime.clock.now()
        result: Any
        if args.step == "start":
            result = recovery.start(
                runtime.db,
                password,
                now=now,
                wait_s=runtime.settings.recovery_wait_s,
                owner_wait_s=runtime.settings.recovery_wait_owner_s,
                owner_signature=args.owner_signature,
                actor="cli",
            )
        elif args.step == "complete":
            result = recovery.complete(runtime.db, password, now=now, actor="cli")
        else:
            result = recovery.abort(runtime.db, password, now=now, actor="cli")
        _print_json(asdict(result))
    return 0


def _add_kill_switch(commands: Any) -> None:
    group = commands.add_parser(
        "kill-switch",
        help="the emergency stop (against the database directly)",
        description=KILL_SWITCH_HELP,
    ).add_subparsers(dest="kill_switch_command", required=True, metavar="ACTION")

    status = group.add_parser(
        "status", help="print the state as JSON", description=KILL_SWITCH_HELP
    )
    _database_option(status)
    status.set_defaults(handler=cmd_kill_switch_status)

    activate = group.add_parser(
        "activate",
        help="stop everything: revoke sessions, cancel transactions, suspend agents",
        description=KILL_SWITCH_HELP,
    )
    _database_option(activate)
    activate.add_argument("--reason", required=True, help="why (recorded and shown to clients)")
    activate.add_argument("--actor", default="cli", help="who, for the audit log (default cli)")
    activate.set_defaults(handler=cmd_kill_switch_activate)

    nonce = group.add_parser(
        "nonce",
        help="issue a nonce for an owner to sign (recovery with owners)",
        description=KILL_SWITCH_HELP,
    )
    _database_option(nonce)
    nonce.set_defaults(handler=cmd_kill_switch_nonce)

    recover = group.add_parser(
        "recover",
        help="two-step recovery: start, then complete after the wait (or abort)",
        description=KILL_SWITCH_HELP + " The master password comes from "
        "RACEFREE_MASTER_PASSWORD or, if unset, from a prompt.",
    )
    recover.add_argument(
        "step",
        choices=("start", "complete", "abort"),
        help="start (ACTIVATED -> RECOVERING), complete (-> NORMAL, after the "
        "wait) or abort (-> ACTIVATED)",
    )
    _database_option(recover)
    recover.add_argument(
        "--owner-signature",
        help=f"the {owners.HEADER} value, needed to start when any agent has an owner "
        "(sign a nonce from `racefree kill-switch nonce`)",
    )
    recover.set_defaults(handler=cmd_kill_switch_recover)


@contextlib.contextmanager
def _migrated(args: argparse.Namespace) -> Iterator[Runtime]:
    """The runtime of a command that needs the schema at head; closed when the command ends."""
    runtime = _runtime(args)
    try:
        _require_schema(runtime)
        yield runtime
    finally:
        runtime.close()


def _require_schema(runtime: Runtime) -> None:
    if migrations.current_revision(runtime.db) != migrations.head_revision():
        raise CliError("the database schema is not up to date: run `racefree db upgrade` first")


# -- parser --------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="database URL (default: $RACEFREE_DATABASE_URL or sqlite:///./racefree.db)",
    )


def _audit_parsers(commands: Any) -> None:
    audit_cmd = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    tail = audit_cmd.add_parser("tail", help="print the newest audit entries as JSON lines")
    _database_option(tail)
    tail.add_argument("--limit", type=int, default=20, help="how many entries (default 20)")
    tail.add_argument("--event-type", help="only entries of this event type")
    tail.set_defaults(handler=cmd_audit_tail)
    verify = audit_cmd.add_parser(
        "verify", help="recompute the tamper-evident hash chain; exit 1 at the first broken link"
    )
    _database_option(verify)
    verify.set_defaults(handler=cmd_audit_verify)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="migrate the database, create first-start credentials, serve HTTP",
        description="Migrate the database, create first-start credentials (printed once), "
        "and serve the HTTP API. One process per SQLite file; use PostgreSQL for several.",
    )
    _database_option(serve)
    serve.add_argument("--host", help="bind address (default: $RACEFREE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $RACEFREE_PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="server processes (default 1; more than one needs PostgreSQL)",
    )
    serve.set_defaults(handler=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="racefree",
        description="Race-free state changes on SQL databases: server and operator tools.",
    )
    parser.add_argument("--version", action="version", version=f"racefree {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_serve(commands)

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    upgrade = db.add_parser("upgrade", help="apply migrations up to the newest schema")
    _database_option(upgrade)
    upgrade.set_defaults(handler=cmd_db_upgrade)

    operator = commands.add_parser("operator", help="operator credentials").add_subparsers(
        dest="operator_command", required=True, metavar="ACTION"
    )
    create_token = operator.add_parser(
        "create-token", help="create an operator token and print only the token"
    )
    _database_option(create_token)
    create_token.add_argument("--label", default="cli", help="a name for the token's holder")
    create_token.set_defaults(handler=cmd_operator_create_token)

    _audit_parsers(commands)
    agents_cmd = commands.add_parser("agents", help="agents").add_subparsers(
        dest="agents_command", required=True, metavar="ACTION"
    )
    agents_create = agents_cmd.add_parser(
        "create", help="create an ACTIVE agent and print it as a JSON line"
    )
    _database_option(agents_create)
    agents_create.add_argument("--name", required=True, help="the agent's name")
    agents_create.add_argument(
        "--owner-public-key", help="an owner's Ed25519 public key (base64url); starts in GRACE"
    )
    agents_create.set_defaults(handler=cmd_agents_create)
    agents_list = agents_cmd.add_parser("list", help="print agents as JSON lines, oldest first")
    _database_option(agents_list)
    agents_list.add_argument("--status", choices=("ACTIVE", "SUSPENDED", "TERMINATED"))
    agents_list.add_argument("--limit", type=int, default=100, help="how many (default 100)")
    agents_list.set_defaults(handler=cmd_agents_list)

    sessions_cmd = commands.add_parser("sessions", help="agent sessions").add_subparsers(
        dest="sessions_command", required=True, metavar="ACTION"
    )
    sessions_list = sessions_cmd.add_parser(
        "list", help="print sessions as JSON lines (never tokens), oldest first"
    )
    _database_option(sessions_list)
    sessions_list.add_argument("--agent-id", help="only this agent's sessions")
    sessions_list.add_argument("--active", action="store_true", help="only active sessions")
    sessions_list.add_argument("--limit", type=int, default=100, help="how many (default 100)")
    sessions_list.set_defaults(handler=cmd_sessions_list)
    sessions_revoke = sessions_cmd.add_parser("revoke", help="revoke a session")
    _database_option(sessions_revoke)
    sessions_revoke.add_argument("session_id", help="the session to revoke")
    sessions_revoke.set_defaults(handler=cmd_sessions_revoke)
    sessions_cleanup = sessions_cmd.add_parser(
        "cleanup", help="delete expired sessions that no transaction references"
    )
    _database_option(sessions_cleanup)
    sessions_cleanup.add_argument(
        "--retention",
        type=int,
        default=0,
        metavar="SECONDS",
        help="keep sessions expired less than this long (default 0)",
    )
    sessions_cleanup.set_defaults(handler=cmd_sessions_cleanup)
    _add_command_groups(commands)
    return parser


def _add_command_groups(commands: Any) -> None:
    """Groups whose parsers live in their own functions."""
    _add_locks_commands(commands)
    commands.add_parser(
        "machines", help="print every state machine's transition table as Markdown + Mermaid"
    ).set_defaults(handler=cmd_machines)
    docs = commands.add_parser(
        "docs", help="write the generated reference (errors, HTTP API, settings) into docs/"
    )
    docs.add_argument("--out", default="docs", help="the docs directory (default: docs)")
    docs.set_defaults(handler=cmd_docs)
    _add_kill_switch(commands)
    cli_events.register(commands, database_option=_database_option, migrated=_migrated)


def _add_locks_commands(commands: Any) -> None:
    locks_cmd = commands.add_parser("locks", help="lease locks").add_subparsers(
        dest="locks_command", required=True, metavar="ACTION"
    )
    locks_list = locks_cmd.add_parser(
        "list", help="print the unexpired lease locks as JSON lines (key, holder, token, times)"
    )
    _database_option(locks_list)
    locks_list.add_argument("--prefix", default="", help="only keys starting with this")
    locks_list.set_defaults(handler=cmd_locks_list)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (CliError, DatabaseError, RacefreeError) as exc:
        sys.stderr.write(f"racefree: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line, not a traceback
        sys.stderr.write(f"racefree: error: {type(exc).__name__}: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
