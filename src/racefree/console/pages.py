"""The console's pages (GET): overview, agents, sessions, transactions, plan groups, audit,
auto-stop rules and webhooks."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from racefree import agents, plans, sessions
from racefree.agents import AGENT_MACHINE
from racefree.autostop import rules as autostop_rules
from racefree.console import paths, ruleform, words
from racefree.console import sessions as console_sessions
from racefree.console.web import Console, render, signed_in, stamp
from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError
from racefree.events import webhooks
from racefree.killswitch import attempts, recovery
from racefree.killswitch.machine import KILL_SWITCH
from racefree.plans.generation import lock_view
from racefree.transactions.machine import TRANSACTIONS, UNFINISHED, Status, Tier

router = APIRouter()
ConsoleDep = Annotated[Console, Depends(signed_in)]
Id = Annotated[str | None, Query(max_length=36)]
PAGE_SIZE = 100
RECENT_EVENTS = 20
RECENT_DELIVERIES = 5  # per webhook on the webhooks list
LIVE_BATCH = 100

#: The overview's live list: what an operator must not miss.
NOTABLE = (Severity.WARNING, Severity.CRITICAL)
SEVERITY_CHOICES = (
    ("", "Any"),
    ("warning,critical", "Warning and critical"),
    ("critical", "Critical"),
    ("warning", "Warning"),
    ("info", "Info"),
)
#: Suggestions for the audit page's type filter: every transition's event, and the
#: password and sign-in events (any other type can be typed).
KNOWN_TYPES = tuple(
    sorted(
        {
            *(
                t.audit_event
                for machine in (KILL_SWITCH, AGENT_MACHINE, TRANSACTIONS)
                for t in machine.transitions.values()
                if t.audit_event
            ),
            attempts.REJECTED_EVENT,
            attempts.LOCKED_EVENT,
            recovery.REFUSED_EVENT,
            console_sessions.SIGNED_IN_EVENT,
            console_sessions.SIGNED_OUT_EVENT,
        }
    )
)
READ = ["GET", "HEAD"]


def severities(raw: str | None) -> tuple[Severity, ...]:
    """``warning,critical`` -> the severities; unknown names are ignored."""
    known = {s.value: s for s in Severity}
    return tuple(known[p] for p in (raw or "").split(",") if p in known)


def overview(console: Console) -> HTMLResponse:
    """The overview page (also the answer to every kill-switch action)."""
    now = console.now()
    service = console.runtime.transactions
    with console.runtime.db.read() as tx:
        counts = {
            "active_agents": agents.count(tx, status=agents.ACTIVE),
            "active_sessions": sessions.count_active(tx, now=now),
        }
        entries = audit.latest(tx, limit=RECENT_EVENTS, severities=NOTABLE)
    counts["open_transactions"] = service.count(UNFINISHED)
    counts["approvals_waiting"] = service.count((Status.QUEUED,), tier=Tier.APPROVAL)
    return console.page(
        "overview.html",
        title="Overview",
        nav="overview",
        counts=counts,
        entries=entries,
        after_id=_newest(entries),
        live_url=_live_url(",".join(s.value for s in NOTABLE), None),
    )


def _newest(entries: list[audit.AuditEntry]) -> int:
    return entries[0].id if entries else 0


def _live_url(severity: str, event_type: str | None) -> str:
    query = {"severity": severity, **({"type": event_type} if event_type else {})}
    return f"{paths.EVENTS}?{urlencode(query)}"


@router.api_route(paths.OVERVIEW, methods=READ)
def overview_page(console: ConsoleDep) -> HTMLResponse:
    return overview(console)


def agents_page(
    console: Console, status: str | None = None, after_id: str | None = None
) -> HTMLResponse:
    status = status if status in agents.AGENT_MACHINE.states else None
    with console.runtime.db.read() as tx:
        found = agents.list_agents(tx, after_id=after_id, limit=PAGE_SIZE, status=status)
    return console.page(
        "agents.html",
        title="Agents",
        nav="agents",
        agents=found,
        status=status,
        statuses=agents.AGENT_MACHINE.states,
        next_after_id=_next(found, PAGE_SIZE),
    )


def _next(found: list[Any], limit: int) -> str | None:
    return found[-1].id if len(found) == limit else None


@router.api_route(paths.AGENTS, methods=READ)
def agents_view(
    console: ConsoleDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    after_id: Id = None,
) -> HTMLResponse:
    return agents_page(console, status or None, after_id)


def sessions_page(console: Console, after_id: str | None = None) -> HTMLResponse:
    with console.runtime.db.read() as tx:
        found = sessions.list_sessions(
            tx, now=console.now(), active_only=True, after_id=after_id, limit=PAGE_SIZE
        )
    return console.page(
        "sessions.html",
        title="Sessions",
        nav="sessions",
        sessions=found,
        next_after_id=_next(found, PAGE_SIZE),
    )


@router.api_route(paths.SESSIONS, methods=READ)
def sessions_view(console: ConsoleDep, after_id: Id = None) -> HTMLResponse:
    return sessions_page(console, after_id)


def transactions_page(
    console: Console,
    status: str | None = None,
    tier: str | None = None,
    after_id: str | None = None,
) -> HTMLResponse:
    chosen_status = Status.__members__.get(status or "")
    chosen_tier = Tier.__members__.get(tier or "")
    found = console.runtime.transactions.find(
        status=chosen_status, tier=chosen_tier, after_id=after_id, limit=PAGE_SIZE
    )
    return console.page(
        "transactions.html",
        title="Transactions",
        nav="transactions",
        transactions=found,
        status=chosen_status and chosen_status.value,
        tier=chosen_tier and chosen_tier.value,
        statuses=[s.value for s in Status],
        tiers=[t.value for t in Tier],
        next_after_id=_next(found, PAGE_SIZE),
    )


@router.api_route(paths.TRANSACTIONS, methods=READ)
def transactions_view(
    console: ConsoleDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    tier: Annotated[str | None, Query(max_length=16)] = None,
    after_id: Id = None,
) -> HTMLResponse:
    return transactions_page(console, status or None, tier or None, after_id)


def plan_groups_page(console: Console, after_id: str | None = None) -> HTMLResponse:
    locks = console.runtime.plan_generator.locks
    with console.runtime.db.read() as tx:
        found = plans.list_groups(tx, after_id=after_id, limit=PAGE_SIZE)
    rows = [{"group": g, "lock": lock_view(locks, g.id)} for g in found]
    return console.page(
        "plan_groups.html",
        title="Plan groups",
        nav="plan-groups",
        groups=rows,
        next_after_id=_next(found, PAGE_SIZE),
    )


@router.api_route(paths.PLAN_GROUPS, methods=READ)
def plan_groups_view(console: ConsoleDep, after_id: Id = None) -> HTMLResponse:
    return plan_groups_page(console, after_id)


def rules_page(console: Console, agent_id: str | None = None, start: int = 0) -> HTMLResponse:
    """Every auto-stop rule (global first), or one agent's, each with its edit form."""
    with console.runtime.db.read() as tx:
        found = autostop_rules.list_rules(tx, agent_id=agent_id)
    # the domain lists rules unpaged (at most one per scope and type): page the list here
    shown = found[start : start + PAGE_SIZE]
    return console.page(
        "rules.html",
        title="Rules",
        nav="rules",
        rules=[{"rule": r, "fields": ruleform.fields(r.params)} for r in shown],
        agent_id=agent_id,
        actions=ruleform.ACTIONS,
        enabled_choices=ruleform.ENABLED_CHOICES,
        next_start=start + PAGE_SIZE if len(found) > start + PAGE_SIZE else None,
    )


@router.api_route(paths.RULES, methods=READ)
def rules_view(
    console: ConsoleDep,
    agent_id: Id = None,
    start: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    return rules_page(console, (agent_id or "").strip() or None, start)


def next_attempt(hook: webhooks.Webhook) -> str:
    """When the deliverer tries this webhook next, in words."""
    if hook.status == webhooks.DISABLED:
        return "never, until enabled"
    if not hook.next_attempt_at_ms:
        return "as soon as an event arrives"
    return stamp(hook.next_attempt_at_ms // 1000)


def webhooks_page(
    console: Console,
    webhook_id: str | None = None,
    after_id: str | None = None,
    before: str | None = None,
) -> HTMLResponse:
    """Webhooks with their last delivery, and recent deliveries (of one webhook: paged)."""
    with console.runtime.db.read() as tx:
        # the domain lists webhooks unpaged (operators create them one by one): page here
        hooks = [h for h in webhooks.list_all(tx) if after_id is None or h.id > after_id]
        hooks = hooks[:PAGE_SIZE]
        # with one webhook's history shown, the list needs only each one's last delivery
        each = RECENT_DELIVERIES if webhook_id is None else 1
        recent = webhooks.recent(tx, [h.id for h in hooks], limit=each)
        chosen = _chosen_deliveries(console, tx, webhook_id, before)
    if chosen is None:
        shown = sorted((d for ds in recent.values() for d in ds), key=_newest_first)
    else:
        shown = chosen
    return console.page(
        "webhooks.html",
        title="Webhooks",
        nav="webhooks",
        webhooks=[
            {"hook": h, "last": next(iter(recent[h.id]), None), "next_attempt": next_attempt(h)}
            for h in hooks
        ],
        next_after_id=_next(hooks, PAGE_SIZE),
        webhook_id=webhook_id if chosen is not None else None,
        deliveries=shown,
        recent_count=RECENT_DELIVERIES,
        next_before=_next(chosen, PAGE_SIZE) if chosen else None,
    )


def _newest_first(delivery: webhooks.Delivery) -> tuple[int, str]:
    return (-delivery.started_at_ms, delivery.webhook_id)


def _chosen_deliveries(
    console: Console, tx: Tx, webhook_id: str | None, before: str | None
) -> list[webhooks.Delivery] | None:
    """One webhook's deliveries, newest first (None when none is chosen or it is gone)."""
    if webhook_id is None:
        return None
    try:
        return webhooks.deliveries(tx, webhook_id, limit=PAGE_SIZE, before=before)
    except RacefreeError as refused:  # deleted meanwhile, or a mistyped link
        console.refuse(words.explain(refused), refused.status)
        return None


@router.api_route(paths.WEBHOOKS, methods=READ)
def webhooks_view(
    console: ConsoleDep, webhook_id: Id = None, after_id: Id = None, before: Id = None
) -> HTMLResponse:
    return webhooks_page(console, webhook_id or None, after_id or None, before or None)


EventType = Annotated[str | None, Query(alias="type", max_length=64)]
SeverityParam = Annotated[str | None, Query(max_length=64)]
_EVENT_TYPE = re.compile(r"[A-Z0-9_]{1,64}")


def event_type_filter(console: Console, raw: str | None) -> str | None:
    """The type to filter by (upper-cased), None for all; a malformed one is refused."""
    wanted = (raw or "").strip().upper()
    if not wanted:
        return None
    if not _EVENT_TYPE.fullmatch(wanted):
        console.refuse("Event types are upper-case letters, digits and _ (showing all).", 400)
        return None
    return wanted


def _only(event_type: str | None) -> tuple[str, ...]:
    return () if event_type is None else (event_type,)


@router.api_route(paths.AUDIT, methods=READ)
def audit_view(
    console: ConsoleDep, severity: SeverityParam = None, event_type: EventType = None
) -> HTMLResponse:
    chosen = severities(severity)
    severity_value = ",".join(s.value for s in chosen)
    event_type = event_type_filter(console, event_type)
    with console.runtime.db.read() as tx:
        entries = audit.latest(
            tx, limit=PAGE_SIZE, severities=chosen, event_types=_only(event_type)
        )
    query = urlencode({"severity": severity_value, "type": event_type or ""})
    return console.page(
        "audit.html",
        title="Audit",
        nav="audit",
        entries=entries,
        after_id=_newest(entries),
        severity=severity_value,
        severity_choices=SEVERITY_CHOICES,
        event_type=event_type,
        known_types=KNOWN_TYPES,
        live_url=_live_url(severity_value, event_type),
        refresh_url=f"{paths.AUDIT}?{query}",
    )


@router.api_route(paths.EVENTS, methods=READ)
def events_fragment(
    console: ConsoleDep,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    severity: SeverityParam = None,
    event_type: EventType = None,
) -> HTMLResponse:
    """New audit rows (newest first) as table rows, for the pages' polling script."""
    with console.runtime.db.read() as tx:
        entries = audit.latest(
            tx,
            limit=LIVE_BATCH,
            after_id=after_id,
            severities=severities(severity),
            event_types=_only(event_type_filter(console, event_type)),
        )
    response = render("_events.html", entries=entries)
    response.headers["X-Next-After-Id"] = str(_newest(entries) or after_id)
    response.headers["X-Kill-Switch-State"] = console.kill_switch().state
    return response
