"""AutoStop in the transaction of the event: admission, settlement, and the action.

The transactions domain calls three functions inside its own write transactions:

* :func:`watch` -- first, before any session or transaction row is locked:
  reads the agent's effective rules and locks, in the kill switch cascade's
  order, the kill switch row (when a rule can activate it), the agent row
  (when a rule can suspend it) and the agent's figures row -- so a rule's
  action and an operator's activation queue behind one another instead of
  deadlocking on the rows the cascade locks;
* :func:`admit` -- in the submission's transaction, before the transaction row
  is inserted: ``TIME_RESTRICTION``, ``HOURLY_RATE`` and ``DAILY_LIMIT`` counted
  exactly under the lock; a refusal comes back with the action already taken;
* :func:`settled` -- right after the CAS that made a transaction CONFIRMED or
  FAILED: updates the counters (RETURNING old/new) and acts when one crosses.

Actions (:func:`act`): ``WARN`` writes ``AUTO_STOP_WARN``; ``SUSPEND_AGENT`` is
the agent's ``ACTIVE -> SUSPENDED`` CAS with ``suspension_reason =
'auto_stop:<TYPE>'`` and its sessions revoked, then ``AUTO_STOP_SUSPEND``;
``KILL_SWITCH`` is the kill switch's ``NORMAL -> ACTIVATED`` CAS with actor
``auto_stop``, then ``AUTO_STOP_KILL_SWITCH``. A CAS that finds the work done
(agent already suspended, switch already engaged) writes nothing: however many
events cross at once, each action happens once. The most severe action of the
rules that fired wins; the others are listed in its audit row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from racefree import agents, killswitch
from racefree.agents import locking as agent_locking
from racefree.agents.errors import AgentCode
from racefree.autostop import figures
from racefree.autostop.rules import (
    Action,
    AnomalyPattern,
    ConsecutiveFailures,
    DailyLimit,
    HourlyRate,
    Rule,
    RuleType,
    TimeRestriction,
    effective,
    most_severe,
)
from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError
from racefree.killswitch.errors import KillSwitchCode
from racefree.sessions import revocation
from racefree.system.errors import SystemCode
from racefree.system.kill_switch import lock_for_activation

log = logging.getLogger("racefree.autostop")

ACTOR = "auto_stop"
REASON_PREFIX = "auto_stop:"
HOUR_S = 3_600


#: Rules whose figure and threshold are amounts (minor units), not counts.
AMOUNT_RULES = frozenset({RuleType.DAILY_LIMIT})


@dataclass(frozen=True, slots=True)
class Watch:
    """An agent's effective rules, with its figures row locked by this transaction."""

    agent_id: str
    rules: dict[RuleType, Rule]


@dataclass(frozen=True, slots=True)
class Fired:
    rule: Rule
    action: Action
    figure: int
    threshold: int

    def describe(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule.id,
            "type": self.rule.type.value,
            "action": self.action.value,
            # amounts are strings everywhere, audit included; counts stay numbers
            "figure": str(self.figure) if self.rule.type in AMOUNT_RULES else self.figure,
            "threshold": str(self.threshold) if self.rule.type in AMOUNT_RULES else self.threshold,
            "scope": "global" if self.rule.is_global else "agent",
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :func:`act` did: the action taken (None when it was already done) and why."""

    action: Action | None
    fired: list[Fired] = field(default_factory=list)

    @property
    def refuses(self) -> bool:
        """A submission that fired a stopping rule is not admitted (even if already stopped)."""
        return any(f.action is not Action.WARN for f in self.fired)

    def refusal(self, agent_id: str) -> RacefreeError:
        top = max(self.fired, key=lambda f: f.action.severity)
        code = (
            SystemCode.SYSTEM_LOCKED
            if top.action is Action.KILL_SWITCH
            else AgentCode.AGENT_SUSPENDED
        )
        return RacefreeError(
            code,
            detail=f"refused by the auto-stop rule {top.rule.type.value}",
            details={"agent_id": agent_id, "reason": REASON_PREFIX + top.rule.type.value},
        )


def watch(tx: Tx, agent_id: str, *, now: int) -> Watch:
    """Read the rules and take the locks; the first thing a figure-moving transaction does."""
    rules = effective(tx, agent_id)
    if any(r.action is Action.KILL_SWITCH for r in rules.values()):
        lock_for_activation(tx)
    if any(r.action is not Action.WARN for r in rules.values()):
        agent_locking.lock(tx, agent_id)  # a suspension may follow: the cascade's order
    figures.lock(tx, agent_id, now=now)
    return Watch(agent_id, rules)


# -- admission -----------------------------------------------------------------------------


def admit(tx: Tx, w: Watch, *, amount: int, now: int) -> Outcome:
    """Check the admission-time rules for a new transaction of ``amount``; act on a refusal.

    Returns the outcome; ``outcome.refuses`` means: do not admit (the caller
    commits, so the action stays, and then answers ``outcome.refusal(...)``).
    """
    fired: list[Fired] = []
    rule = w.rules.get(RuleType.TIME_RESTRICTION)
    if rule is not None:
        params: TimeRestriction = rule.params
        hour = (now % 86_400) // HOUR_S
        if not params.allowed_hours.allows(hour):
            fired.append(Fired(rule, rule.action, hour, params.allowed_hours.start))
    rule = w.rules.get(RuleType.HOURLY_RATE)
    if rule is not None:
        rate: HourlyRate = rule.params
        count = figures.transactions_last_hour(tx, w.agent_id, now=now)
        if count >= rate.max_tx_per_hour:
            fired.append(Fired(rule, rule.action, count + 1, rate.max_tx_per_hour))
    rule = w.rules.get(RuleType.DAILY_LIMIT)
    if rule is not None:
        limit: DailyLimit = rule.params
        committed = figures.read(tx, w.agent_id, now=now).confirmed_today
        total = committed + figures.open_amount(tx, w.agent_id) + amount
        if total > limit.stop_at():
            fired.append(Fired(rule, rule.action, total, limit.stop_at()))
    # a WARN rule over its limit at admission warns (each such submission) and admits
    return act(tx, w.agent_id, fired, now=now)


# -- settlement ----------------------------------------------------------------------------


def settled(tx: Tx, w: Watch, *, status: str, amount: int, destination: str, now: int) -> Outcome:
    """After a transaction became CONFIRMED or FAILED: update the figures, act on a crossing."""
    fired: list[Fired] = []
    if status == "FAILED":
        change = figures.failed(tx, w.agent_id, now=now)
        rule = w.rules.get(RuleType.CONSECUTIVE_FAILURES)
        if rule is not None:
            params: ConsecutiveFailures = rule.params
            fired += _threshold(rule, change, params.threshold)
    elif status == "CONFIRMED":
        change = figures.confirmed(tx, w.agent_id, amount, now=now)
        rule = w.rules.get(RuleType.DAILY_LIMIT)
        if rule is not None:
            limit: DailyLimit = rule.params
            fired += _threshold(rule, change, limit.stop_at())
            if change.reached(limit.warn_at()) and change.new < limit.stop_at():
                fired.append(Fired(rule, Action.WARN, change.new, limit.warn_at()))
        rule = w.rules.get(RuleType.ANOMALY_PATTERN)
        if rule is not None:
            anomaly: AnomalyPattern = rule.params
            count = figures.confirmed_to(tx, w.agent_id, destination, now=now)
            seen = figures.Change(count - 1, count)
            fired += _threshold(rule, seen, anomaly.same_destination_stop)
            if (
                seen.reached(anomaly.same_destination_warn)
                and count < anomaly.same_destination_stop
            ):
                fired.append(Fired(rule, Action.WARN, count, anomaly.same_destination_warn))
    return act(tx, w.agent_id, fired, now=now)


def _threshold(rule: Rule, change: figures.Change, threshold: int) -> list[Fired]:
    """The rule fires when the figure is at or past its threshold.

    A WARN fires only on the update that reached it (once); stronger actions
    fire while the figure stays past it, and their CAS makes them happen once.
    """
    if change.new < threshold:
        return []
    if rule.action is Action.WARN and not change.reached(threshold):
        return []
    return [Fired(rule, rule.action, change.new, threshold)]


# -- actions -------------------------------------------------------------------------------


def act(tx: Tx, agent_id: str, fired: list[Fired], *, now: int) -> Outcome:
    """Take the most severe action of ``fired`` (once: each action is a CAS)."""
    action = most_severe([f.action for f in fired])
    if action is None:
        return Outcome(None, fired)
    top = max(fired, key=lambda f: f.action.severity)
    details = {**top.describe(), "fired": [f.describe() for f in fired]}
    taken: Action | None = action
    if action is Action.WARN:
        audit.record(
            tx,
            "AUTO_STOP_WARN",
            at=now,
            severity=Severity.WARNING,
            actor=ACTOR,
            agent_id=agent_id,
            details=details,
        )
    elif action is Action.SUSPEND_AGENT:
        taken = action if _suspend(tx, agent_id, top, details, now=now) else None
    else:
        taken = action if _kill_switch(tx, agent_id, top, details, now=now) else None
    if taken is not None:  # logged before the commit: a rollback would also undo the action
        log.warning(
            "auto-stop %s for agent %s: %s at %d (threshold %d)",
            taken.value,
            agent_id,
            top.rule.type.value,
            top.figure,
            top.threshold,
        )
    return Outcome(taken, fired)


def _suspend(tx: Tx, agent_id: str, top: Fired, details: dict[str, Any], *, now: int) -> bool:
    reason = REASON_PREFIX + top.rule.type.value
    try:
        agents.suspend(tx, agent_id, now=now, reason=reason, actor=ACTOR)
    except RacefreeError as exc:
        if exc.code in (AgentCode.AGENT_SUSPENDED, AgentCode.AGENT_TERMINATED):
            return False  # already stopped: the CAS missed and wrote nothing
        raise
    revoked = revocation.revoke_where(tx, revocation.of_agent(agent_id), now=now, reason=reason)
    audit.record(
        tx,
        "AUTO_STOP_SUSPEND",
        at=now,
        severity=Severity.CRITICAL,
        actor=ACTOR,
        agent_id=agent_id,
        details={**details, "reason": reason, "sessions_revoked": revoked},
    )
    return True


def _kill_switch(tx: Tx, agent_id: str, top: Fired, details: dict[str, Any], *, now: int) -> bool:
    reason = f"{REASON_PREFIX}{top.rule.type.value} (agent {agent_id})"
    try:
        done = killswitch.activate(tx, reason, now=now, actor=ACTOR)
    except RacefreeError as exc:
        if exc.code is KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE:
            return False
        raise
    audit.record(
        tx,
        "AUTO_STOP_KILL_SWITCH",
        at=now,
        severity=Severity.CRITICAL,
        actor=ACTOR,
        agent_id=agent_id,
        details={**details, "activation_id": done.activation_id},
    )
    return True
