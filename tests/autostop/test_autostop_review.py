"""AutoStop review: limits at their boundaries, windows across UTC midnight, bad params."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree.agents.errors import AgentCode
from racefree.autostop.rules import Action, RuleType
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.testing import race
from racefree.transactions.service import Transactions
from tests import factory
from tests.autostop.test_enforcement import _codes, _rule
from tests.factory import OWNER_PUBLIC
from tests.transactions.conftest import transfer

DAY = 86_400


def _count(db: Database, event_type: str) -> int:
    with db.read() as tx:
        return len(audit.entries(tx, event_type=event_type, limit=1000))


def _status(db: Database, agent: str) -> str:
    with db.read() as tx:
        return str(tx.scalar("SELECT status FROM agents WHERE id = :id", {"id": agent}))


def _before_midnight(clock: ManualClock, seconds: int) -> None:
    clock.set((clock.now() // DAY + 1) * DAY - seconds)


def test_daily_limit_one_over_is_refused_and_exactly_at_is_admitted(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _rule(db, RuleType.DAILY_LIMIT, {"daily_max": "1000"}, Action.SUSPEND_AGENT)
    over = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    with pytest.raises(RacefreeError) as refused:
        service.submit(factory.session(db, over, now=clock.now()), transfer(1001))
    assert refused.value.code is AgentCode.AGENT_SUSPENDED
    at = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    answer = service.submit(factory.session(db, at, now=clock.now()), transfer(1000))
    assert answer.reply.body["status"] == "CONFIRMED"
    with db.read() as tx:
        admitted = tx.scalar(
            "SELECT COUNT(*) FROM transactions WHERE agent_id IN (:a, :b)", {"a": over, "b": at}
        )
    assert admitted == 1  # the one over the limit was never inserted
    assert _count(db, "AUTO_STOP_SUSPEND") == 2  # one per agent, once each


def test_daily_limit_restarts_at_utc_midnight_under_concurrency(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _before_midnight(clock, 5)
    _rule(db, RuleType.DAILY_LIMIT, {"daily_max": "1000"}, Action.SUSPEND_AGENT)
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    sessions = [factory.session(db, agent, now=clock.now()) for _ in range(5)]
    service.submit(sessions[0], transfer(900))  # yesterday: 900 of 1000
    clock.advance(10)  # 00:00:05 UTC: a new day, the sum starts again
    codes = _codes(race(30, lambda i: service.submit(sessions[i % 5], transfer(100))))
    # today's 1000 admits ten of 100 together, never more (yesterday's 900 is not counted)
    assert codes["CONFIRMED"] == 10
    assert set(codes) <= {"CONFIRMED", "AGENT_SUSPENDED", "SESSION_REVOKED"}
    assert _count(db, "AUTO_STOP_SUSPEND") == 1


def test_hourly_rate_window_spans_utc_midnight_under_concurrency(
    db: Database, service: Transactions, clock: ManualClock
) -> None:
    _before_midnight(clock, 20 * 60)  # 23:40 UTC
    _rule(db, RuleType.HOURLY_RATE, {"max_tx_per_hour": 5}, Action.SUSPEND_AGENT)
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1_000_000)
    sessions = [factory.session(db, agent, now=clock.now()) for _ in range(5)]
    for _ in range(3):
        service.submit(sessions[0], transfer(1))
    clock.advance(30 * 60)  # 00:10 UTC: the three of 23:40 are still in the last hour
    codes = _codes(race(20, lambda i: service.submit(sessions[i % 5], transfer(1))))
    assert codes["CONFIRMED"] == 2
    assert set(codes) <= {"CONFIRMED", "AGENT_SUSPENDED", "SESSION_REVOKED"}
    assert _count(db, "AUTO_STOP_SUSPEND") == 1
    assert _status(db, agent) == "SUSPENDED"


@pytest.mark.parametrize(
    ("rule_type", "params"),
    [
        # a JSON boolean is not a count
        ("CONSECUTIVE_FAILURES", {"threshold": True}),
        ("HOURLY_RATE", {"max_tx_per_hour": True}),
        ("DAILY_LIMIT", {"daily_max": True}),
        ("TIME_RESTRICTION", {"allowed_hours": {"start": False, "end": 5}}),
    ],
)
def test_bad_params_get_400_on_set_and_patch(
    client: TestClient, operator_headers: dict[str, str], rule_type: str, params: dict[str, Any]
) -> None:
    answer = client.post(
        "/v1/auto-stop/rules", json={"type": rule_type, "params": params}, headers=operator_headers
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "VALIDATION_ERROR"
    good = {
        "CONSECUTIVE_FAILURES": {},
        "HOURLY_RATE": {},
        "DAILY_LIMIT": {"daily_max": "1000"},
        "TIME_RESTRICTION": {"allowed_hours": {"start": 1, "end": 5}},
    }[rule_type]
    made = client.post(
        "/v1/auto-stop/rules", json={"type": rule_type, "params": good}, headers=operator_headers
    )
    assert made.status_code == 201, made.text
    patched = client.patch(
        f"/v1/auto-stop/rules/{made.json()['id']}",
        json={"params": params},
        headers=operator_headers,
    )
    assert patched.status_code == 400, patched.text
    assert patched.json()["code"] == "VALIDATION_ERROR"
