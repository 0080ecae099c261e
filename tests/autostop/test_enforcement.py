"""AutoStop acts in the transaction of the event, exactly once, however many events race."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from racefree import killswitch
from racefree.agents.errors import AgentCode
from racefree.autostop import rules
from racefree.autostop.rules import Action, RuleType
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.testing import Outcome, race, tally
from racefree.transactions import moves
from racefree.transactions.machine import Transaction
from racefree.transactions.service import Transactions
from tests import factory
from tests.factory import OWNER_PUBLIC
from tests.transactions.conftest import statuses, transfer


def _rule(
    db: Database,
    rule_type: RuleType,
    params: dict[str, Any],
    action: Action,
    agent: str | None = None,
) -> None:
    with db.write() as tx:
        rules.put(
            tx,
            agent_id=agent,
            rule_type=rule_type,
            params=rules.parse_params(rule_type, params),
            action=action,
            now=0,
            actor="test",
        )


def _codes(outcomes: list[Outcome]) -> Counter[str]:
    """Refusals by code; answered submissions by their reply (a FAILED one is its code)."""
    return Counter(
        o.code if not o.won else str(o.value.reply.body.get("code") or o.value.reply.body["status"])
        for o in outcomes
    )


def _rows(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type=event_type, limit=1000)


def _agent_row(db: Database, agent: str) -> dict[str, Any]:
    with db.read() as tx:
        row = tx.one("SELECT status, suspension_reason FROM agents WHERE id = :id", {"id": agent})
    assert row is not None
    return row


def _unrevoked(db: Database, agent: str) -> int:
    with db.read() as tx:
        return int(
            tx.scalar(
                "SELECT COUNT(*) FROM sessions WHERE agent_id = :id AND revoked_at IS NULL",
                {"id": agent},
            )
        )


def test_twenty_concurrent_failures_suspend_the_agent_once(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _rule(db, RuleType.CONSECUTIVE_FAILURES, {"threshold": 3}, Action.SUSPEND_AGENT)
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=0)
    sessions = [factory.session(db, agent, now=clock.now()) for _ in range(4)]
    codes = _codes(race(20, lambda i: service.submit(sessions[i % 4], transfer(100))))
    # failures until the third one crossed; the rest were refused, or were admitted
    # before the suspension and failed after it (each such failure is a FAILED row)
    assert set(codes) <= {"INSUFFICIENT_BALANCE", "AGENT_SUSPENDED", "SESSION_REVOKED"}
    assert codes.total() == 20
    with db.read() as tx:
        failed = tx.scalar(
            "SELECT COUNT(*) FROM transactions WHERE agent_id = :a AND status = 'FAILED'",
            {"a": agent},
        )
        admitted = tx.scalar("SELECT COUNT(*) FROM transactions WHERE agent_id = :a", {"a": agent})
        figure = tx.scalar(
            "SELECT consecutive_failures FROM agent_figures WHERE agent_id = :a", {"a": agent}
        )
    assert codes["INSUFFICIENT_BALANCE"] == failed == admitted == figure >= 3
    assert _agent_row(db, agent) == {
        "status": "SUSPENDED",
        "suspension_reason": "auto_stop:CONSECUTIVE_FAILURES",
    }
    suspended = _rows(db, "AUTO_STOP_SUSPEND")
    assert len(suspended) == 1
    assert suspended[0].agent_id == agent
    assert suspended[0].details["type"] == "CONSECUTIVE_FAILURES"
    assert suspended[0].details["figure"] == 3
    assert _unrevoked(db, agent) == 0
    later = _codes(race(1, lambda _i: service.submit(sessions[0], transfer(100))))
    assert set(later) <= {"AGENT_SUSPENDED", "SESSION_REVOKED"}


def test_hourly_rate_admits_at_most_the_limit_and_acts_once(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _rule(db, RuleType.HOURLY_RATE, {"max_tx_per_hour": 10}, Action.SUSPEND_AGENT)
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    sessions = [factory.session(db, agent, now=clock.now()) for _ in range(5)]
    codes = _codes(race(30, lambda i: service.submit(sessions[i % 5], transfer(10))))
    codes["won"] = codes.pop("CONFIRMED", 0)
    # admissions queue on the agent's figures row: the first ten pass, the eleventh
    # crosses the limit and suspends the agent, everyone after it is refused
    assert codes["won"] == 10
    assert set(codes) <= {"won", "AGENT_SUSPENDED", "SESSION_REVOKED"}
    assert codes.total() == 30
    with db.read() as tx:
        admitted = tx.scalar("SELECT COUNT(*) FROM transactions WHERE agent_id = :a", {"a": agent})
    assert admitted == codes["won"] == 10
    assert len(_rows(db, "AUTO_STOP_SUSPEND")) == 1
    assert _agent_row(db, agent)["suspension_reason"] == "auto_stop:HOURLY_RATE"


def test_hourly_rate_is_a_sliding_hour(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _rule(db, RuleType.HOURLY_RATE, {"max_tx_per_hour": 2}, Action.SUSPEND_AGENT)
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    session = factory.session(db, agent, now=clock.now())
    service.submit(session, transfer(1))
    clock.advance(1800)
    service.submit(session, transfer(1))
    clock.advance(1801)  # the first is now older than an hour
    service.submit(session, transfer(1))
    assert _agent_row(db, agent)["status"] == "ACTIVE"
    with pytest.raises(Exception) as refused:
        service.submit(session, transfer(1))
    assert getattr(refused.value, "code", None) is AgentCode.AGENT_SUSPENDED


def _executing(db: Database, agent: str, session: str) -> Transaction:
    """A transaction in EXECUTING with its reservation, as a submission leaves it."""
    with db.write() as tx:
        txn_id = factory.transaction(tx, agent, session, status="EXECUTING", amount=100)
        tx.execute("UPDATE sessions SET reserved = reserved + 100 WHERE id = :id", {"id": session})
        row = tx.one("SELECT * FROM transactions WHERE id = :id", {"id": txn_id})
    assert row is not None
    return Transaction.from_row(row)


@pytest.mark.parametrize("runs", range(3))
def test_a_kill_switch_rule_racing_ten_operators_activates_once(
    db: Database, clock: ManualClock, runs: int
) -> None:
    """The executor's fail move (the rule fires in it) against ten operators' activations."""
    _rule(db, RuleType.CONSECUTIVE_FAILURES, {"threshold": 1}, Action.KILL_SWITCH)
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=0)
    session = factory.session(db, agent, now=clock.now())
    txn = _executing(db, agent, session)

    def attempt(i: int) -> Any:
        with db.write() as tx:
            if i == 0:
                return moves.end(
                    tx, "fail", txn, now=clock.now(), reason="INSUFFICIENT_BALANCE", actor="x"
                )
            return killswitch.activate(tx, f"operator {i}", now=clock.now(), actor=f"operator:{i}")

    outcomes = race(11, attempt)
    operators = outcomes[1:]
    operator_wins = sum(o.won for o in operators)
    rule_won = len(_rows(db, "AUTO_STOP_KILL_SWITCH")) == 1
    # the failure came first (and its rule activated), or an activation cancelled the transaction
    assert outcomes[0].won == rule_won
    if not rule_won:
        assert outcomes[0].code == "INVALID_STATE_TRANSITION"
    assert operator_wins + int(rule_won) == 1  # exactly one activation, whoever made it
    assert tally(operators)["KILL_SWITCH_ALREADY_ACTIVE"] == 10 - operator_wins
    activated = _rows(db, "KILL_SWITCH_ACTIVATED")
    assert len(activated) == 1
    if rule_won:
        assert activated[0].actor == "auto_stop"
    with db.read() as tx:
        assert killswitch.read(tx).state == "ACTIVATED"


def test_a_kill_switch_rule_that_fires_first_leaves_operators_already_active(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _rule(db, RuleType.CONSECUTIVE_FAILURES, {"threshold": 1}, Action.KILL_SWITCH)
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=0)
    session = factory.session(db, agent, now=clock.now())
    service.submit(session, transfer(100))
    with db.read() as tx:
        state = killswitch.read(tx)
    assert (state.state, state.actor) == ("ACTIVATED", "auto_stop")
    assert state.reason == f"auto_stop:CONSECUTIVE_FAILURES (agent {agent})"

    def press(i: int) -> Any:
        with db.write() as tx:
            return killswitch.activate(tx, "late", now=clock.now(), actor=f"operator:{i}")

    assert tally(race(10, press)) == {"KILL_SWITCH_ALREADY_ACTIVE": 10}
    assert len(_rows(db, "KILL_SWITCH_ACTIVATED")) == 1
    assert len(_rows(db, "AUTO_STOP_KILL_SWITCH")) == 1


def test_daily_limit_warns_once_and_stops_at_admission(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _rule(
        db,
        RuleType.DAILY_LIMIT,
        {"daily_max": "1000", "warn_percent": 50, "stop_percent": 100},
        Action.SUSPEND_AGENT,
    )
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    session = factory.session(db, agent, now=clock.now())
    for _ in range(3):
        service.submit(session, transfer(200))  # 600: crossed 50 % once
    assert len(_rows(db, "AUTO_STOP_WARN")) == 1
    codes = _codes(race(6, lambda _i: service.submit(session, transfer(100))))
    assert codes["CONFIRMED"] == 4  # 600 + 4 * 100 = 1000: never past the limit together
    assert statuses(db, session) == {"CONFIRMED": 7}
    assert len(_rows(db, "AUTO_STOP_SUSPEND")) == 1
    assert _agent_row(db, agent)["suspension_reason"] == "auto_stop:DAILY_LIMIT"


def test_time_restriction_refuses_outside_the_hours(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    _rule(
        db,
        RuleType.TIME_RESTRICTION,
        {"allowed_hours": {"start": 22, "end": 6}},  # wraps midnight
        Action.SUSPEND_AGENT,
        agent=agent,
    )
    session = factory.session(db, agent, now=clock.now())
    clock.set(86_400 * 20_000 + 23 * 3600)  # 23:00 UTC
    service.submit(session, transfer(1))
    clock.set(86_400 * 20_001 + 5 * 3600)  # 05:00
    service.submit(session, transfer(1))
    clock.set(86_400 * 20_001 + 12 * 3600)  # noon
    with pytest.raises(Exception) as refused:
        service.submit(session, transfer(1))
    assert getattr(refused.value, "code", None) is AgentCode.AGENT_SUSPENDED
    assert _agent_row(db, agent)["suspension_reason"] == "auto_stop:TIME_RESTRICTION"


def test_anomaly_pattern_and_most_severe_wins(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    _rule(
        db,
        RuleType.ANOMALY_PATTERN,
        {"same_destination_warn": 2, "same_destination_stop": 3},
        Action.SUSPEND_AGENT,
    )
    _rule(db, RuleType.DAILY_LIMIT, {"daily_max": "300", "warn_percent": 90}, Action.WARN)
    session = factory.session(db, agent, now=clock.now())
    service.submit(session, transfer(50, "acct:x"))
    service.submit(session, transfer(50, "acct:y"))
    service.submit(session, transfer(50, "acct:x"))  # x twice: ANOMALY warns
    assert [r.details["type"] for r in _rows(db, "AUTO_STOP_WARN")] == ["ANOMALY_PATTERN"]
    service.submit(session, transfer(120, "acct:x"))  # x three times, and 270 >= 90 % of 300
    suspend = _rows(db, "AUTO_STOP_SUSPEND")
    assert len(suspend) == 1
    assert sorted(f["type"] for f in suspend[0].details["fired"]) == [
        "ANOMALY_PATTERN",
        "DAILY_LIMIT",
    ]
    # amounts are strings in the audit too; counts stay numbers
    fired = {f["type"]: f for f in suspend[0].details["fired"]}
    assert (fired["DAILY_LIMIT"]["figure"], fired["DAILY_LIMIT"]["threshold"]) == ("270", "270")
    assert (fired["ANOMALY_PATTERN"]["figure"], fired["ANOMALY_PATTERN"]["threshold"]) == (3, 3)
    assert len(_rows(db, "AUTO_STOP_WARN")) == 1  # the WARN lost to the suspension


def test_suspensions_racing_operator_activations_never_deadlock(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    """Failures that suspend their agents while operators activate: every call ends cleanly."""
    _rule(db, RuleType.CONSECUTIVE_FAILURES, {"threshold": 1}, Action.SUSPEND_AGENT)
    agents_ = [factory.agent(db, owner=OWNER_PUBLIC, balance=0) for _ in range(3)]
    sessions = [factory.session(db, a, now=clock.now()) for a in agents_ for _ in range(2)]

    def attempt(i: int) -> Any:
        if i % 4 == 3:
            with db.write() as tx:
                return killswitch.activate(tx, "op", now=clock.now(), actor=f"operator:{i}")
        return service.submit(sessions[i % len(sessions)], transfer(100))

    outcomes = race(16, attempt)
    pressed = [o for i, o in enumerate(outcomes) if i % 4 == 3]
    submitted = [o for i, o in enumerate(outcomes) if i % 4 != 3]
    assert set(tally(pressed)) <= {"won", "KILL_SWITCH_ALREADY_ACTIVE"}
    # no deadlock, no internal error: every submission ends with a domain answer
    assert set(_codes(submitted)) <= {
        "INSUFFICIENT_BALANCE",
        "SESSION_REVOKED",
        "AGENT_SUSPENDED",
        "KILL_SWITCH",
        "SYSTEM_LOCKED",
        "CANCELLED",
        "INVALID_STATE_TRANSITION",
    }, _codes(submitted)
    assert len(_rows(db, "KILL_SWITCH_ACTIVATED")) == 1
