"""Typed conflicts and refusals in plain words, saying who won where the database knows.

A console action that loses a race gets the same typed error as the API; this
module turns it into one sentence for the operator. For the kill switch it
reads the switch's row after the conflict, so the sentence names the winner:
"already activated by operator:alice at 09:14:03 UTC — reason: ...".
"""

from __future__ import annotations

from collections.abc import Callable

from racefree.agents.errors import AgentCode
from racefree.console.web import clock_time
from racefree.core.audit import AuditEntry
from racefree.core.errors import Code, GeneralCode, MachineCode, RacefreeError
from racefree.killswitch.errors import KillSwitchCode
from racefree.killswitch.machine import ACTIVATE, KILL_SWITCH
from racefree.killswitch.status import ACTIVATED, RECOVERING, KillSwitchStatus
from racefree.operators.errors import AuthCode
from racefree.plans.errors import PlanCode
from racefree.sessions.errors import SessionCode
from racefree.transactions.errors import TransactionCode

ACTIVATE_EVENT = KILL_SWITCH.transitions[ACTIVATE].audit_event


def kill_switch_conflict(
    error: RacefreeError, current: KillSwitchStatus, last: AuditEntry | None
) -> str:
    """A kill-switch step that lost, explained from the switch's row and its last move."""
    code = error.code
    if code is KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE:
        text = (
            f"Not activated: already activated by {current.actor}"
            f" at {clock_time(current.activated_at)} — reason: {current.reason}."
        )
        if current.state == RECOVERING:
            text += f" It is {RECOVERING} now."
        return _and_last(text, last, ACTIVATE_EVENT)
    if code is KillSwitchCode.RECOVERY_ALREADY_STARTED:
        return _and_last(
            "Recovery was already started: it can complete at"
            f" {clock_time(current.recovery_eligible_at)}.",
            last,
        )
    if code in (KillSwitchCode.KILL_SWITCH_NOT_ACTIVE, KillSwitchCode.INVALID_RECOVERY_STATE):
        text = f"Nothing to do: the kill switch is {current.state}"
        if current.state == ACTIVATED:
            text += f" (activated by {current.actor} at {clock_time(current.activated_at)})"
        return _and_last(text + ".", last, ACTIVATE_EVENT)
    return explain(error)


def _and_last(text: str, last: AuditEntry | None, unless: str | None = None) -> str:
    if last is None or last.event_type == unless:
        return text  # the sentence already names who activated
    return f"{text} Last change: {last.event_type} by {last.actor} at {clock_time(last.at)}."


def _wait(error: RacefreeError) -> str:
    eligible = error.details.get("recovery_eligible_at")
    remaining = error.details.get("remaining_seconds")
    return (
        f"Too early: recovery can complete at {clock_time(eligible)}"
        f" ({remaining} s from now). Nothing was changed."
    )


def _wrong_password(error: RacefreeError) -> str:
    left = error.details.get("remaining_attempts")
    return (
        f"Wrong master password. {left} attempt(s) left before a 30-minute lockout."
        " Nothing was changed."
    )


def _locked(error: RacefreeError) -> str:
    until = error.details.get("lockout_until")
    return (
        "The master password is locked after too many wrong attempts, until"
        f" {clock_time(until)}. Every attempt meanwhile is refused and audited."
    )


def _in_progress(error: RacefreeError) -> str:
    d = error.details
    return (
        f"Not started: a generation is already running, held by {d.get('holder')}"
        f" since {d.get('acquired_at')} (lease until {d.get('expires_at')}). Try again shortly."
    )


def _current(error: RacefreeError) -> str:
    current = error.details.get("current") or error.details.get("status")
    suffix = f" It is {current} now." if current else ""
    return f"{error.spec.title}: {error.message}.{suffix}"


def _session_revoked(error: RacefreeError) -> str:
    d = error.details
    return (
        f"Already revoked at {clock_time(d.get('revoked_at'))}"
        f" (reason: {d.get('revoke_reason')}). Nothing was changed."
    )


def _invalid(error: RacefreeError) -> str:
    issues = error.details.get("issues") or []
    said = "; ".join(_issue(i) for i in issues if isinstance(i, dict))
    return f"Not done: {said or error.message}."


#: Parts of an issue's location that name where a field sits, not which field it is.
_CONTAINERS = frozenset({"body", "query", "path", "header", "params"})


def _issue(issue: dict[str, object]) -> str:
    """The issue's message, prefixed with its field when the message does not name it."""
    msg = str(issue.get("msg"))
    loc = issue.get("loc")
    parts = [str(p) for p in loc if str(p) not in _CONTAINERS] if isinstance(loc, list) else []
    field = ".".join(parts)
    return f"{field}: {msg}" if field and field.split(".")[-1] not in msg else msg


def stale_version(
    what: str, error: RacefreeError, seen: int | None, last: AuditEntry | None
) -> str:
    """A form saved from an older version than the row has now (a lost If-Match)."""
    current = str(error.details.get("current_etag", "?")).strip('"')
    text = (
        f"Not saved: {what} was changed since this page showed it"
        f" — you edited version {seen}, it is version {current} now."
    )
    return (
        _and_last(text, last)
        + " Nothing was changed: the current values are shown below; edit them and save again."
    )


_SPECIFIC: dict[Code, Callable[[RacefreeError], str]] = {
    GeneralCode.VALIDATION_ERROR: _invalid,
    KillSwitchCode.RECOVERY_WAIT_REQUIRED: _wait,
    AuthCode.INVALID_MASTER_PASSWORD: _wrong_password,
    AuthCode.MASTER_PASSWORD_LOCKED: _locked,
    PlanCode.PLAN_GENERATION_IN_PROGRESS: _in_progress,
    SessionCode.SESSION_ALREADY_REVOKED: _session_revoked,
    MachineCode.INVALID_STATE_TRANSITION: _current,
    TransactionCode.TX_ALREADY_PROCESSED: _current,
    AgentCode.AGENT_SUSPENDED: _current,
}


def explain(error: RacefreeError) -> str:
    """One sentence for any catalog error."""
    specific = _SPECIFIC.get(error.code)
    if specific is not None:
        return specific(error)
    if error.code is AuthCode.AUTH_REQUIRED:
        return "Enter the master password."
    return f"{error.spec.title}: {error.message}."


def with_last_change(error: RacefreeError, last: AuditEntry | None) -> str:
    """:func:`explain`, plus who changed the thing last when the action lost to a change."""
    said = explain(error)
    if error.status not in (409, 410):
        return said
    return _and_last(said, last)
