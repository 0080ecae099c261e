"""``racefree webhooks|events|rules``: events out and AutoStop rules, from the command line.

Registered into the main parser by :func:`register` (kept apart from ``cli`` so
the command groups merge independently). Like the other local commands they
work on the database directly; a running server's deliverer picks a new
webhook up at its next poll.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from racefree.autostop import rules
from racefree.core.errors import issue, validation_error
from racefree.events import outbox, secrets, targets, webhooks
from racefree.events.outbox import Position
from racefree.runtime import Runtime

Migrated = Callable[[argparse.Namespace], contextlib.AbstractContextManager[Runtime]]
_migrated: Migrated


def _emit(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime, runtime.db.read() as tx:
        for hook in webhooks.list_all(tx):
            _emit(hook.public())
    return 0


def cmd_webhooks_add(args: argparse.Namespace) -> int:
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    with _migrated(args) as runtime:
        targets.check(args.url, targets.allowed_hosts(runtime.settings.webhook_allowed_hosts))
        now = runtime.clock.now()
        with runtime.db.write() as tx:
            box = secrets.box(tx, runtime.settings, now=now)
            hook, secret = webhooks.create(
                tx, box, url=args.url, event_types=types, now=now, actor="cli"
            )
    _emit({**hook.public(), "secret": secret})
    return 0


def cmd_webhooks_remove(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime, runtime.db.write() as tx:
        webhooks.delete(tx, args.webhook_id, now=runtime.clock.now(), actor="cli")
    _emit({"id": args.webhook_id, "deleted": True})
    return 0


def _start(runtime: Runtime, args: argparse.Namespace) -> Position:
    """Where ``events tail`` starts: after --after-id, else before the last --limit events."""
    with runtime.db.read() as tx:
        if args.after_id is None:
            return outbox.rewind(tx, max(0, min(args.limit, outbox.MAX_PAGE)))
        found = outbox.position_of(tx, args.after_id) if args.after_id else outbox.START
    if found is None:
        raise validation_error(
            [issue("argument", "after-id", msg="unknown event id")],
            detail=f"no event with id {args.after_id}",
        )
    return found


def _follow(runtime: Runtime, start: Position, types: list[str] | None) -> Iterator[outbox.Event]:
    position = start
    while True:
        with runtime.db.read() as tx:
            batch = outbox.read(tx, position, types=types, limit=500)
        yield from batch.events
        position = batch.position
        if not batch.events:
            time.sleep(runtime.settings.events_poll_interval_s)


def cmd_events_tail(args: argparse.Namespace) -> int:
    types = [t.strip() for t in args.types.split(",") if t.strip()] if args.types else None
    with _migrated(args) as runtime:
        start = _start(runtime, args)
        if not args.follow:
            with runtime.db.read() as tx:
                for event in outbox.read(tx, start, types=types, limit=outbox.MAX_PAGE).events:
                    _emit(event.payload())
            return 0
        for n, event in enumerate(_follow(runtime, start, types), start=1):
            _emit(event.payload())
            if args.count and n >= args.count:
                break
    return 0


def cmd_rules_list(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime, runtime.db.read() as tx:
        for rule in rules.list_rules(tx, agent_id=args.agent_id):
            _emit(rule.as_dict())
    return 0


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """``--params JSON`` and/or ``--param key=value`` (values parsed as JSON when they can be)."""
    params: dict[str, Any] = json.loads(args.params) if args.params else {}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def cmd_rules_set(args: argparse.Namespace) -> int:
    rule_type = rules.RuleType(args.type)
    params = rules.parse_params(rule_type, _params(args))
    with _migrated(args) as runtime, runtime.db.write() as tx:
        rule, _ = rules.put(
            tx,
            agent_id=args.agent_id,
            rule_type=rule_type,
            params=params,
            action=rules.Action(args.action),
            enabled=not args.disabled,
            now=runtime.clock.now(),
            actor="cli",
        )
    _emit(rule.as_dict())
    return 0


def cmd_rules_delete(args: argparse.Namespace) -> int:
    with _migrated(args) as runtime, runtime.db.write() as tx:
        rules.delete(tx, args.rule_id, now=runtime.clock.now(), actor="cli")
    _emit({"id": args.rule_id, "deleted": True})
    return 0


def seed_rules(runtime: Runtime) -> None:
    """The default AutoStop rules, on the first start of ``racefree serve`` only."""
    with runtime.db.write() as tx:
        rules.seed_defaults(
            tx, now=runtime.clock.now(), daily_max=runtime.settings.auto_stop_seed_daily_max
        )


def register(
    commands: Any,
    *,
    database_option: Callable[[argparse.ArgumentParser], None],
    migrated: Migrated,
) -> None:
    """Add the ``webhooks`` and ``events`` command groups to the main parser."""
    global _migrated
    _migrated = migrated

    hooks = commands.add_parser("webhooks", help="webhooks (events out)").add_subparsers(
        dest="webhooks_command", required=True, metavar="ACTION"
    )
    listed = hooks.add_parser("list", help="print webhooks as JSON lines (never secrets)")
    database_option(listed)
    listed.set_defaults(handler=cmd_webhooks_list)
    add = hooks.add_parser(
        "add", help="add a webhook; prints it with its signing secret, shown only this once"
    )
    database_option(add)
    add.add_argument(
        "--url", required=True, help="target (its host in $RACEFREE_WEBHOOK_ALLOWED_HOSTS)"
    )
    add.add_argument("--types", default="*", help="comma-separated event types (default: *)")
    add.set_defaults(handler=cmd_webhooks_add)
    remove = hooks.add_parser("remove", help="delete a webhook and its delivery history")
    database_option(remove)
    remove.add_argument("webhook_id")
    remove.set_defaults(handler=cmd_webhooks_remove)

    _register_rules(commands, database_option)

    events = commands.add_parser("events", help="the event outbox").add_subparsers(
        dest="events_command", required=True, metavar="ACTION"
    )
    tail = events.add_parser(
        "tail", help="print events as JSON lines (the webhook payload), in outbox order"
    )
    database_option(tail)
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.add_argument("--limit", type=int, default=20, help="start with the last N (default 20)")
    tail.add_argument("--after-id", type=int, help="start after this event id (0: the first)")
    tail.add_argument("--types", help="comma-separated event types")
    tail.add_argument("--count", type=int, default=0, help="with --follow, exit after N events")
    tail.set_defaults(handler=cmd_events_tail)


def _register_rules(
    commands: Any, database_option: Callable[[argparse.ArgumentParser], None]
) -> None:
    group = commands.add_parser("rules", help="AutoStop rules").add_subparsers(
        dest="rules_command", required=True, metavar="ACTION"
    )
    listed = group.add_parser("list", help="print rules as JSON lines (global first)")
    database_option(listed)
    listed.add_argument("--agent-id", help="only this agent's own rules")
    listed.set_defaults(handler=cmd_rules_list)
    put = group.add_parser(
        "set", help="set the rule of a type, globally or for one agent (replaces the existing one)"
    )
    database_option(put)
    put.add_argument("type", choices=[t.value for t in rules.RuleType])
    put.add_argument("--agent-id", help="the agent (default: a global rule)")
    put.add_argument("--action", default="SUSPEND_AGENT", choices=[a.value for a in rules.Action])
    put.add_argument("--params", help="all parameters as JSON, e.g. '{\"threshold\": 5}'")
    put.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="one parameter"
    )
    put.add_argument("--disabled", action="store_true", help="store it disabled (an exemption)")
    put.set_defaults(handler=cmd_rules_set)
    delete = group.add_parser("delete", help="delete a rule")
    database_option(delete)
    delete.add_argument("rule_id")
    delete.set_defaults(handler=cmd_rules_delete)
