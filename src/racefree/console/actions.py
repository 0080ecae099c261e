"""The console's non-kill-switch actions: agents, sessions, transactions, plan groups,
auto-stop rules and webhooks.

Each calls the same domain function as the API route, with the operator's actor
and ``via: console`` on the audit row. None is on the kill-switch guard's
allow-list: while the switch is engaged they hold it NORMAL (or check it) themselves
and are refused, the guard answers 503, and the pages show their buttons disabled
with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from racefree import agents, sessions
from racefree.autostop import rules
from racefree.console import forms, pages, paths, ruleform, words
from racefree.console.forms import CsrfField
from racefree.console.web import Console, signed_in
from racefree.core import audit, context
from racefree.core.conditional import Precondition
from racefree.core.db import Tx
from racefree.core.errors import GeneralCode, RacefreeError, invalid_field
from racefree.events import webhooks
from racefree.killswitch import status
from racefree.transactions import approvals

router = APIRouter()
ConsoleDep = Annotated[Console, Depends(signed_in)]
Id = Annotated[str, Path(min_length=1, max_length=36)]


def _explain(console: Console, **about: str) -> Callable[[RacefreeError], str]:
    """Plain words for a refusal, naming the last change to the agent/session/transaction."""

    def explain(error: RacefreeError) -> str:
        with console.runtime.db.read() as tx:
            last = audit.last_about(tx, **about)
        return words.with_last_change(error, last)

    return explain


def _in_write(console: Console, change: Callable[[Tx], str]) -> Callable[[], str]:
    """``change`` in a write transaction that holds the kill switch NORMAL till commit.

    These actions are not on the guard's allow-list; holding the switch here (not only
    the guard's check) means none can commit after an activation has.
    """

    def run() -> str:
        with console.runtime.db.write() as tx:
            status.hold_normal(tx)
            return change(tx)

    return run


AgentMove = Callable[..., agents.Agent]


def _move_agent(
    console: Console, csrf: str, agent_id: str, move: AgentMove, done: str
) -> HTMLResponse:
    """Suspend or activate: one CAS of the agent machine, told as "<done> <name>."."""

    def change(tx: Tx) -> str:
        agent = move(tx, agent_id, now=console.now(), actor=console.operator.actor)
        return f"{done} {agent.name}."

    console.attempt(csrf, _in_write(console, change), _explain(console, agent_id=agent_id))
    return pages.agents_page(console)


@router.post(f"{paths.AGENTS}/{{agent_id}}/suspend")
def suspend_agent(agent_id: Id, console: ConsoleDep, csrf_token: CsrfField = "") -> HTMLResponse:
    return _move_agent(console, csrf_token, agent_id, agents.suspend, "Suspended")


@router.post(f"{paths.AGENTS}/{{agent_id}}/activate")
def activate_agent(agent_id: Id, console: ConsoleDep, csrf_token: CsrfField = "") -> HTMLResponse:
    """``agents.activate`` holds the kill switch NORMAL until it commits."""
    return _move_agent(console, csrf_token, agent_id, agents.activate, "Activated")


@router.post(f"{paths.AGENTS}/{{agent_id}}/deposit")
def deposit(
    agent_id: Id,
    console: ConsoleDep,
    csrf_token: CsrfField = "",
    amount: Annotated[str, Form(max_length=32)] = "",
) -> HTMLResponse:
    def change(tx: Tx) -> str:
        if not amount.strip().isdigit():
            raise invalid_field("amount", "the amount must be a whole number")
        balance = agents.deposit(
            tx, agent_id, int(amount), now=console.now(), actor=console.operator.actor
        )
        return f"Deposited {int(amount)}; the balance is {balance}."

    console.attempt(csrf_token, _in_write(console, change), words.explain)
    return pages.agents_page(console)


@router.post(f"{paths.SESSIONS}/{{session_id}}/revoke")
def revoke_session(session_id: Id, console: ConsoleDep, csrf_token: CsrfField = "") -> HTMLResponse:
    def change(tx: Tx) -> str:
        sessions.revoke(tx, session_id, now=console.now(), actor=console.operator.actor)
        return f"Revoked session {session_id}."

    explain = _explain(console, session_id=session_id)
    console.attempt(csrf_token, _in_write(console, change), explain)
    return pages.sessions_page(console)


@router.post(f"{paths.TRANSACTIONS}/{{transaction_id}}/reject")
def reject_transaction(
    transaction_id: Id, console: ConsoleDep, csrf_token: CsrfField = ""
) -> HTMLResponse:
    def change(tx: Tx) -> str:
        txn = approvals.reject(tx, transaction_id, now=console.now(), actor=console.operator.actor)
        return f"Rejected transaction {txn.id}: it is {txn.status.value}."

    explain = _explain(console, transaction_id=transaction_id)
    console.attempt(csrf_token, _in_write(console, change), explain)
    return pages.transactions_page(console)


@router.post(f"{paths.PLAN_GROUPS}/{{group_id}}/generate")
def generate_plans(group_id: Id, console: ConsoleDep, csrf_token: CsrfField = "") -> HTMLResponse:
    def change() -> str:
        with console.runtime.db.read() as tx:  # the generator runs transactions of its own
            view = status.guard_view(tx)
        if view.state != status.NORMAL:
            raise status.system_locked(view)
        holder = f"{console.operator.actor}/console/{context.request_id.get() or '-'}"
        done = console.runtime.plan_generator.generate(group_id, holder=holder)
        return (
            f"Generated {done.plans_created} plans (generation {done.generation},"
            f" fencing token {done.fencing_token})."
        )

    console.attempt(csrf_token, change, words.explain)
    return pages.plan_groups_page(console)


# -- auto-stop rules and webhooks: edits carry the version the page showed -----------------

#: How far back the audit log is searched for who changed a rule or webhook last.
LAST_CHANGE_WINDOW = 200
Version = Annotated[str, Form(max_length=18)]


def _last_change(
    tx: Tx, event_types: tuple[str, ...], key: str, value: str
) -> audit.AuditEntry | None:
    """The newest recent audit row whose ``details[key]`` is ``value`` (audit rows of
    rules and webhooks name them in their details, not in a column)."""
    recent = audit.latest(tx, limit=LAST_CHANGE_WINDOW, event_types=event_types)
    return next((e for e in recent if e.details.get(key) == value), None)


def _explain_stale(
    console: Console,
    what: str,
    seen: int | None,
    last_change: Callable[[Tx], audit.AuditEntry | None],
) -> Callable[[RacefreeError], str]:
    """Plain words for an edit refused because the thing moved on since the page showed it."""

    def explain(error: RacefreeError) -> str:
        if error.code is not GeneralCode.PRECONDITION_FAILED:
            return words.explain(error)
        with console.runtime.db.read() as tx:
            last = last_change(tx)
        return words.stale_version(what, error, seen, last)

    return explain


@router.post(f"{paths.RULES}/{{rule_id}}")
async def edit_rule(
    rule_id: Id, request: Request, console: ConsoleDep, csrf_token: CsrfField = ""
) -> HTMLResponse:
    """Save a rule's parameters, action and enabled flag at the version the form showed.

    Async only to read the form, whose parameter fields depend on the rule's type;
    the work runs in the thread pool like the other (sync) actions.
    """
    submitted = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    return await run_in_threadpool(_edit_rule, console, csrf_token, rule_id, submitted)


def _edit_rule(console: Console, csrf: str, rule_id: str, form: dict[str, str]) -> HTMLResponse:
    def change(tx: Tx) -> str:
        edit = ruleform.read(rules.get(tx, rule_id), form)  # the type decides the fields
        rule = rules.update(
            tx,
            rule_id,
            now=console.now(),
            actor=console.operator.actor,
            expected=edit.seen,  # the If-Match: part of the update's CAS
            params=edit.params,
            action=edit.action,
            enabled=edit.enabled,
        )
        return f"Saved {ruleform.describe(rule)}: it is version {rule.version} now."

    explain = _explain_stale(
        console,
        "this rule",
        ruleform.seen_version(form),
        lambda tx: _last_change(tx, ("AUTO_STOP_RULE_SET",), "id", rule_id),
    )
    console.attempt(csrf, _in_write(console, change), explain)
    return pages.rules_page(console)


def _set_webhook_status(
    console: Console, csrf: str, webhook_id: str, version: str, new_status: str
) -> HTMLResponse:
    """Enable (failures reset, delivery resumes) or disable a webhook, at the shown version."""
    seen = forms.version(version)

    def change(tx: Tx) -> str:
        if seen is None:
            raise invalid_field("version", "the form lost the webhook's version: reload the page")
        hook = webhooks.update(
            tx,
            webhook_id,
            now=console.now(),
            actor=console.operator.actor,
            expected=Precondition((seen,)),
            status=new_status,
        )
        return f"Webhook {hook.url} is {hook.status} now (version {hook.version})."

    explain = _explain_stale(
        console,
        "this webhook",
        seen,
        lambda tx: _last_change(
            tx, ("WEBHOOK_UPDATED", "WEBHOOK_DISABLED"), "webhook_id", webhook_id
        ),
    )
    console.attempt(csrf, _in_write(console, change), explain)
    return pages.webhooks_page(console)


@router.post(f"{paths.WEBHOOKS}/{{webhook_id}}/enable")
def enable_webhook(
    webhook_id: Id, console: ConsoleDep, csrf_token: CsrfField = "", version: Version = ""
) -> HTMLResponse:
    return _set_webhook_status(console, csrf_token, webhook_id, version, webhooks.ACTIVE)


@router.post(f"{paths.WEBHOOKS}/{{webhook_id}}/disable")
def disable_webhook(
    webhook_id: Id, console: ConsoleDep, csrf_token: CsrfField = "", version: Version = ""
) -> HTMLResponse:
    return _set_webhook_status(console, csrf_token, webhook_id, version, webhooks.DISABLED)
