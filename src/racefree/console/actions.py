"""The console's non-kill-switch actions: agents, sessions, transactions, plan groups.

Each calls the same domain function as the API route, with the operator's actor
and ``via: console`` on the audit row. None is on the kill-switch guard's
allow-list: while the switch is engaged they hold it NORMAL (or check it) themselves
and are refused, the guard answers 503, and the pages show their buttons disabled
with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import HTMLResponse

from racefree import agents, sessions
from racefree.console import pages, paths, words
from racefree.console.forms import CsrfField
from racefree.console.web import Console, signed_in
from racefree.core import audit, context
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError, invalid_field
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
