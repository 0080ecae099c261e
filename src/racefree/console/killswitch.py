"""The kill switch from the console: activation (reason + confirmation) and recovery.

These routes are on the guard's allow-list: they work while the switch is
engaged. Each answers with the overview, saying what happened -- or, when the
action lost a race, who won ("already activated by operator:alice at 09:14:03
UTC — reason: ..."). The master password is a form field sent once per step;
it is handed to the domain and never stored, logged or rendered back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse

from racefree import killswitch
from racefree.console import pages, paths, words
from racefree.console.forms import CsrfField, Secret, Text, has_control_characters
from racefree.console.web import Console, check_csrf, clock_time, signed_in
from racefree.core import audit
from racefree.core.errors import RacefreeError
from racefree.killswitch import recovery, status
from racefree.killswitch.machine import KILL_SWITCH

router = APIRouter()
ConsoleDep = Annotated[Console, Depends(signed_in)]
MAX_REASON = 1000
NO_REASON = "Give a reason in plain text: everyone who sees the system locked reads it."


@router.api_route(paths.ACTIVATE, methods=pages.READ)
def confirm_activation(console: ConsoleDep) -> HTMLResponse:
    """Asks for the reason and the confirmation (works with JavaScript off)."""
    return console.page("activate.html", title="Activate kill switch", nav="overview", reason="")


@router.post(paths.ACTIVATE)
def activate(
    console: ConsoleDep,
    csrf_token: CsrfField = "",
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
) -> HTMLResponse:
    check_csrf(console, csrf_token)
    reason = reason.strip()
    if not reason or has_control_characters(reason):
        console.refuse(NO_REASON, 400)
        kept = "" if has_control_characters(reason) else reason
        return console.page(
            "activate.html", title="Activate kill switch", nav="overview", reason=kept
        )

    def step() -> str:
        with console.runtime.db.write() as tx:
            done = killswitch.activate(tx, reason, now=console.now(), actor=console.operator.actor)
        return (
            f"Kill switch activated at {clock_time(done.activated_at)}:"
            f" {done.sessions_revoked} sessions revoked, {done.transactions_cancelled}"
            f" transactions cancelled, {done.agents_suspended} agents suspended."
        )

    return _kill_switch_step(console, csrf_token, step)


def _kill_switch_step(console: Console, csrf: str, step: Callable[[], str]) -> HTMLResponse:
    console.attempt(csrf, step, lambda lost: _conflict(console, lost))
    return pages.overview(console)


#: The audit events of the kill switch's moves: the last one says who moved it last.
MOVES = tuple(t.audit_event for t in KILL_SWITCH.transitions.values() if t.audit_event)


def _conflict(console: Console, lost: RacefreeError) -> str:
    """Why a kill-switch step lost, from the switch's row and its last move's audit entry."""
    with console.runtime.db.read() as tx:
        current = status.read(tx)
        last = audit.latest(tx, limit=1, event_types=MOVES)
    return words.kill_switch_conflict(lost, current, last[0] if last else None)


@router.post(paths.RECOVERY)
def start_recovery(
    console: ConsoleDep,
    csrf_token: CsrfField = "",
    master_password: Secret = "",
    owner_signature: Text = "",
) -> HTMLResponse:
    def step() -> str:
        settings = console.runtime.settings
        started = recovery.start(
            console.runtime.db,
            master_password or None,
            now=console.now(),
            wait_s=settings.recovery_wait_s,
            owner_wait_s=settings.recovery_wait_owner_s,
            owner_signature=owner_signature.strip() or None,
            actor=console.operator.actor,
        )
        return (
            f"Recovery started: it can complete at {clock_time(started.recovery_eligible_at)}"
            f" (in {started.wait_seconds} s)."
        )

    return _kill_switch_step(console, csrf_token, step)


@router.post(paths.RECOVERY_COMPLETE)
def complete_recovery(
    console: ConsoleDep, csrf_token: CsrfField = "", master_password: Secret = ""
) -> HTMLResponse:
    def step() -> str:
        done = recovery.complete(
            console.runtime.db,
            master_password or None,
            now=console.now(),
            actor=console.operator.actor,
        )
        return f"Recovery complete: {done.agents_reactivated} agents re-activated; NORMAL again."

    return _kill_switch_step(console, csrf_token, step)


@router.post(paths.RECOVERY_ABORT)
def abort_recovery(
    console: ConsoleDep, csrf_token: CsrfField = "", master_password: Secret = ""
) -> HTMLResponse:
    def step() -> str:
        recovery.abort(
            console.runtime.db,
            master_password or None,
            now=console.now(),
            actor=console.operator.actor,
        )
        return "Recovery aborted: the kill switch is ACTIVATED again."

    return _kill_switch_step(console, csrf_token, step)
