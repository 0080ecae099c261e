"""AutoStop rules: what to watch, the threshold, and the action (docs/events.md).

A rule is global (``scope='*'``) or an agent's own (``scope=<agent id>``); at
most one rule per scope and type (UNIQUE), and an agent's rule of a type
replaces the global rule of that type -- a *disabled* agent rule therefore
exempts that agent. Actions by severity: ``WARN < SUSPEND_AGENT < KILL_SWITCH``;
when several rules fire on one event the most severe wins (:func:`most_severe`).

Parameters per type (validated; defaults in brackets):

* ``CONSECUTIVE_FAILURES {threshold [3]}`` -- FAILED since the last CONFIRMED;
* ``DAILY_LIMIT {warn_percent [80], stop_percent [100], daily_max}`` -- CONFIRMED
  amounts since UTC midnight; warns at ``warn_percent``, acts at ``stop_percent``;
* ``HOURLY_RATE {max_tx_per_hour [50]}`` -- the agent's transactions, last 3600 s;
* ``TIME_RESTRICTION {allowed_hours: {start, end}}`` -- UTC hours, ``start <= h <
  end``, wrapping midnight when ``start > end``;
* ``ANOMALY_PATTERN {same_destination_warn [10], same_destination_stop [20]}`` --
  CONFIRMED to one destination in the last hour.

Changes are CAS on ``id`` (+ ``version`` with ``If-Match``): 404
``AUTO_STOP_RULE_NOT_FOUND``, 412 ``PRECONDITION_FAILED``; each writes its audit row.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from racefree import agents
from racefree.autostop.errors import AutoStopCode
from racefree.core import audit, conditional
from racefree.core.conditional import Precondition
from racefree.core.db import Row, Tx
from racefree.core.errors import RacefreeError, issue, validation_error
from racefree.core.ids import new_id
from racefree.system import settings as system_settings

GLOBAL = "*"
MAX_AMOUNT = 10**15


class RuleType(StrEnum):
    CONSECUTIVE_FAILURES = "CONSECUTIVE_FAILURES"
    DAILY_LIMIT = "DAILY_LIMIT"
    HOURLY_RATE = "HOURLY_RATE"
    TIME_RESTRICTION = "TIME_RESTRICTION"
    ANOMALY_PATTERN = "ANOMALY_PATTERN"


class Action(StrEnum):
    WARN = "WARN"
    SUSPEND_AGENT = "SUSPEND_AGENT"
    KILL_SWITCH = "KILL_SWITCH"

    @property
    def severity(self) -> int:
        """WARN < SUSPEND_AGENT < KILL_SWITCH."""
        return list(Action).index(self)


def most_severe(actions: list[Action]) -> Action | None:
    return max(actions, key=lambda a: a.severity, default=None)


# -- parameters ----------------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans(cls, data: Any) -> Any:
        """A JSON ``true``/``false`` is not a count or an amount (lax ``int`` reads 1/0)."""
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, bool):
                    raise ValueError(f"{name} must be a number, not a boolean")
        return data


class ConsecutiveFailures(_Params):
    threshold: int = Field(default=3, ge=1, le=1_000_000)


class DailyLimit(_Params):
    warn_percent: int = Field(default=80, ge=1, le=1000)
    stop_percent: int = Field(default=100, ge=1, le=1000)
    daily_max: int = Field(ge=1, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _order(self) -> DailyLimit:
        if self.warn_percent > self.stop_percent:
            raise ValueError("warn_percent must not be above stop_percent")
        return self

    def warn_at(self) -> int:
        return self.daily_max * self.warn_percent // 100

    def stop_at(self) -> int:
        return self.daily_max * self.stop_percent // 100


class HourlyRate(_Params):
    max_tx_per_hour: int = Field(default=50, ge=1, le=1_000_000)


class Hours(_Params):
    start: int = Field(ge=0, le=23)
    end: int = Field(ge=0, le=24)

    @model_validator(mode="after")
    def _not_empty(self) -> Hours:
        if self.start == self.end:
            raise ValueError("start == end allows no hour; use start 0, end 24 for all day")
        return self

    def allows(self, hour: int) -> bool:
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end  # wraps midnight


class TimeRestriction(_Params):
    allowed_hours: Hours


class AnomalyPattern(_Params):
    same_destination_warn: int = Field(default=10, ge=1, le=1_000_000)
    same_destination_stop: int = Field(default=20, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _order(self) -> AnomalyPattern:
        if self.same_destination_warn > self.same_destination_stop:
            raise ValueError("same_destination_warn must not be above same_destination_stop")
        return self


Params = ConsecutiveFailures | DailyLimit | HourlyRate | TimeRestriction | AnomalyPattern

PARAMS: dict[RuleType, type[_Params]] = {
    RuleType.CONSECUTIVE_FAILURES: ConsecutiveFailures,
    RuleType.DAILY_LIMIT: DailyLimit,
    RuleType.HOURLY_RATE: HourlyRate,
    RuleType.TIME_RESTRICTION: TimeRestriction,
    RuleType.ANOMALY_PATTERN: AnomalyPattern,
}


def parse_params(rule_type: RuleType, raw: dict[str, Any]) -> _Params:
    """The validated parameters of ``rule_type``, or 400 ``VALIDATION_ERROR``."""
    try:
        return PARAMS[rule_type].model_validate(raw)
    except ValidationError as exc:
        issues = [
            issue("body", "params", *map(str, e["loc"]), msg=e["msg"], type=e["type"])
            for e in exc.errors()
        ]
        raise validation_error(issues, detail=f"invalid parameters for {rule_type}") from None


@functools.lru_cache(maxsize=1024)
def _params(rule_type: RuleType, stored: str) -> _Params:
    """The stored JSON of a rule's parameters, validated (once per distinct text: the
    models are frozen, so rules read on every submission share them)."""
    return PARAMS[rule_type].model_validate(json.loads(stored))


# -- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    agent_id: str | None
    type: RuleType
    params: Any  # one of the parameter models for ``type``
    action: Action
    enabled: bool
    version: int
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Row) -> Rule:
        rule_type = RuleType(row["type"])
        return cls(
            id=row["id"],
            agent_id=row["agent_id"],
            type=rule_type,
            params=_params(rule_type, row["params"]),
            action=Action(row["action"]),
            enabled=bool(row["enabled"]),
            version=int(row["version"]),
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
        )

    @property
    def is_global(self) -> bool:
        return self.agent_id is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "scope": "global" if self.is_global else "agent",
            "type": self.type.value,
            "params": _public(self.params),
            "action": self.action.value,
            "enabled": self.enabled,
            "version": self.version,
        }


def _public(params: _Params) -> dict[str, Any]:
    """Parameters for answers and audit rows: amounts as strings, like every amount."""
    shown = params.model_dump()
    if isinstance(params, DailyLimit):
        shown["daily_max"] = str(params.daily_max)
    return shown


def _not_found(rule_id: str) -> RacefreeError:
    return RacefreeError(
        AutoStopCode.AUTO_STOP_RULE_NOT_FOUND,
        detail=f"no auto-stop rule {rule_id}",
        details={"rule_id": rule_id},
    )


def _classify(tx: Tx, rule_id: str) -> RacefreeError:
    return conditional.miss(tx, "auto_stop_rules", rule_id, _not_found(rule_id))


def _dump(params: _Params) -> str:
    return json.dumps(params.model_dump(), separators=(",", ":"), sort_keys=True)


def put(
    tx: Tx,
    *,
    agent_id: str | None,
    rule_type: RuleType,
    params: _Params,
    action: Action,
    enabled: bool = True,
    now: int,
    actor: str | None,
) -> tuple[Rule, bool]:
    """Set the rule of ``rule_type`` for the agent (or globally): create or replace it.

    One upsert on the (scope, type) key, so two racing callers end with one
    rule (the later one's values). Returns the rule and whether it was created.
    """
    if agent_id is not None:
        agents.get(tx, agent_id)  # 404 AGENT_NOT_FOUND (agents are never deleted)
    row = tx.one(
        "INSERT INTO auto_stop_rules (id, scope, agent_id, type, params, action, enabled,"
        " version, created_at, updated_at) VALUES (:id, :scope, :agent_id, :type, :params,"
        " :action, :enabled, 1, :now, :now) ON CONFLICT (scope, type) DO UPDATE SET"
        " params = excluded.params, action = excluded.action, enabled = excluded.enabled,"
        " version = auto_stop_rules.version + 1, updated_at = excluded.updated_at RETURNING *",
        {
            "id": new_id(),
            "scope": agent_id or GLOBAL,
            "agent_id": agent_id,
            "type": rule_type.value,
            "params": _dump(params),
            "action": action.value,
            "enabled": int(enabled),
            "now": now,
        },
    )
    assert row is not None
    rule = Rule.from_row(row)
    created = rule.version == 1
    audit.record(
        tx,
        "AUTO_STOP_RULE_SET",
        at=now,
        actor=actor,
        agent_id=agent_id,
        details={**rule.as_dict(), "created": created},
    )
    return rule, created


def get(tx: Tx, rule_id: str) -> Rule:
    row = tx.one("SELECT * FROM auto_stop_rules WHERE id = :id", {"id": rule_id})
    if row is None:
        raise _not_found(rule_id)
    return Rule.from_row(row)


def list_rules(tx: Tx, *, agent_id: str | None = None, scope: str | None = None) -> list[Rule]:
    """All rules (global first), or those of one agent, or only the global ones."""
    sql = "SELECT * FROM auto_stop_rules"
    if scope == GLOBAL:
        sql += " WHERE scope = '*'"
    elif agent_id is not None:
        sql += " WHERE agent_id = :agent_id"
    sql += " ORDER BY CASE WHEN scope = '*' THEN 0 ELSE 1 END, scope, type"
    return [Rule.from_row(r) for r in tx.all(sql, {"agent_id": agent_id})]


def update(
    tx: Tx,
    rule_id: str,
    *,
    now: int,
    actor: str | None,
    expected: Precondition | None = None,
    params: dict[str, Any] | None = None,
    action: Action | None = None,
    enabled: bool | None = None,
) -> Rule:
    """Change a rule's parameters, action or enabled flag (CAS; ``If-Match`` -> version)."""
    sets = ["version = version + 1", "updated_at = :now"]
    values: dict[str, Any] = {"id": rule_id, "now": now}
    if params is not None:
        current = get(tx, rule_id)  # the type decides the schema; the CAS below still guards
        values["params"] = _dump(parse_params(current.type, params))
        sets.append("params = :params")
    if action is not None:
        values["action"] = action.value
        sets.append("action = :action")
    if enabled is not None:
        values["enabled"] = int(enabled)
        sets.append("enabled = :enabled")
    where = conditional.where(expected, values)
    row = tx.one(f"UPDATE auto_stop_rules SET {', '.join(sets)} WHERE {where} RETURNING *", values)
    if row is None:
        raise _classify(tx, rule_id)
    rule = Rule.from_row(row)
    audit.record(
        tx,
        "AUTO_STOP_RULE_SET",
        at=now,
        actor=actor,
        agent_id=rule.agent_id,
        details=rule.as_dict(),
    )
    return rule


def delete(
    tx: Tx, rule_id: str, *, now: int, actor: str | None, expected: Precondition | None = None
) -> Rule:
    params: dict[str, Any] = {"id": rule_id}
    where = conditional.where(expected, params)
    row = tx.one(f"DELETE FROM auto_stop_rules WHERE {where} RETURNING *", params)
    if row is None:
        raise _classify(tx, rule_id)
    rule = Rule.from_row(row)
    audit.record(
        tx,
        "AUTO_STOP_RULE_DELETED",
        at=now,
        actor=actor,
        agent_id=rule.agent_id,
        details=rule.as_dict(),
    )
    return rule


def effective(tx: Tx, agent_id: str) -> dict[RuleType, Rule]:
    """The rules that apply to ``agent_id``: its own per type, else the global one; enabled only."""
    rows = tx.all(
        "SELECT * FROM auto_stop_rules WHERE scope IN ('*', :agent_id)", {"agent_id": agent_id}
    )
    return choose(rows)


#: The rows :func:`choose` picks from for the agent of the session ``:session_id``.
FOR_SESSION = (
    "SELECT * FROM auto_stop_rules WHERE scope = '*'"
    " OR scope = (SELECT agent_id FROM sessions WHERE id = :session_id)"
)


def choose(rows: list[Row]) -> dict[RuleType, Rule]:
    """Of an agent's and the global rule rows: the effective rule per type, enabled only."""
    chosen: dict[RuleType, Rule] = {}
    for rule in sorted(map(Rule.from_row, rows), key=lambda r: not r.is_global):
        chosen[rule.type] = rule  # the agent's own rule comes last and replaces the global one
    return {t: r for t, r in chosen.items() if r.enabled}


SEEDED_KEY = "auto_stop_rules_seeded"


def seed_defaults(tx: Tx, *, now: int, daily_max: int) -> int:
    """First start only: the first three rule types as global SUSPEND_AGENT rules.

    Claimed once in ``system_settings`` (insert-if-absent), so rules an operator
    deleted later are not seeded again. No seeded rule uses KILL_SWITCH.
    """
    if not system_settings.insert_if_absent(tx, SEEDED_KEY, "1", now=now):
        return 0
    defaults: list[tuple[RuleType, _Params]] = [
        (RuleType.CONSECUTIVE_FAILURES, ConsecutiveFailures()),
        (RuleType.DAILY_LIMIT, DailyLimit(daily_max=daily_max)),
        (RuleType.HOURLY_RATE, HourlyRate()),
    ]
    for rule_type, params in defaults:
        put(
            tx,
            agent_id=None,
            rule_type=rule_type,
            params=params,
            action=Action.SUSPEND_AGENT,
            now=now,
            actor="system",
        )
    return len(defaults)
