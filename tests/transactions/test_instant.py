"""The ledger's one-commit payment (issue 11): the same record as the step path, or nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from racefree.agents.errors import AgentCode
from racefree.autostop import rules
from racefree.autostop.rules import Action, RuleType
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.settings import Settings
from racefree.testing import race, tally
from racefree.transactions import instant
from racefree.transactions.executors import LedgerExecutor
from racefree.transactions.machine import Tier
from racefree.transactions.service import Transactions
from tests import factory
from tests.factory import OWNER_PUBLIC
from tests.faults.support import hold_writer_lock
from tests.transactions.conftest import balance, session_row, statuses, transfer


def _figured_agent(db: Database, **kw: Any) -> str:
    """An agent whose AutoStop figures row exists (on PostgreSQL an agent's first
    transaction, which creates that row, takes the step path)."""
    agent = factory.agent(db, owner=OWNER_PUBLIC, **kw)
    with db.write() as tx:
        tx.execute("INSERT INTO agent_figures (agent_id, updated_at) VALUES (:a, 0)", {"a": agent})
    return agent


def _record(db: Database, txn_id: str) -> dict[str, Any]:
    """Everything a payment leaves, without its ids and times."""
    with db.read() as tx:
        txn = tx.one("SELECT * FROM transactions WHERE id = :id", {"id": txn_id})
        trail = tx.all(
            "SELECT event_type, severity, actor, details FROM audit_log"
            " WHERE transaction_id = :id ORDER BY id",
            {"id": txn_id},
        )
        assert txn is not None
        figures = tx.one(
            "SELECT consecutive_failures, confirmed_today FROM agent_figures WHERE agent_id = :a",
            {"a": txn["agent_id"]},
        )
        ledger = tx.all(
            "SELECT amount, destination FROM ledger_entries WHERE transaction_id = :id",
            {"id": txn_id},
        )
    varying = ("id", "agent_id", "session_id", "created_at", "updated_at", "submitted_at")
    varying += ("confirmed_at", "deadline_at_ms", "reference", "response_body")
    return {
        "transaction": {k: v for k, v in txn.items() if k not in varying},
        "trail": [{**r, "details": json.loads(r["details"])} for r in trail],
        "figures": figures,
        "ledger": ledger,
    }


@pytest.mark.parametrize("key", [None, "key-1"])
def test_one_commit_leaves_what_the_step_path_leaves(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    key: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    left = []
    for one_commit in (True, False):
        if not one_commit:
            monkeypatch.setattr(instant, "pay", lambda *args, **kwargs: None)
        agent = _figured_agent(db, balance=1000)
        session = factory.session(db, agent, now=clock.now(), constraints={"max_total_amount": 900})
        service = Transactions(db, clock, settings)
        outcome = service.submit(session, transfer(300), idempotency_key=key)
        assert outcome.reply.status == 200, outcome.reply
        assert outcome.transaction_id is not None
        if key is not None:
            replay = service.submit(session, transfer(300), idempotency_key=key)
            assert (replay.replayed, replay.reply) == (True, outcome.reply)
        left.append(
            (
                _record(db, outcome.transaction_id),
                session_row(db, session),
                balance(db, agent),
                {k: v for k, v in outcome.reply.body.items() if not k.endswith("_id")},
            )
        )
    assert left[0] == left[1]
    trail = left[0][0]["trail"]
    assert [r["event_type"] for r in trail] == [
        "TRANSACTION_CREATED",
        "TRANSACTION_CLAIMED",
        "TRANSACTION_SUBMITTED",
        "TRANSACTION_CONFIRMED",
    ]


def _pay(db: Database, settings: Settings, clock: ManualClock, session: str, **kw: Any) -> Any:
    return instant.pay(
        db,
        settings,
        kw.pop("admissions", None) or instant.Admissions(),
        session_id=session,
        request=transfer(kw.pop("amount", 100), kw.pop("destination", "acct:shop")),
        tier=Tier.INSTANT,
        idempotency_key=kw.pop("key", None),
        now=clock.now(),
        now_ms=clock.now_ms(),
    )


def test_what_could_end_otherwise_is_left_to_the_step_path_with_nothing_written(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    agent = _figured_agent(db, balance=1000)
    session = factory.session(db, agent, now=clock.now(), constraints={"max_transactions": 3})
    assert _pay(db, settings, clock, session, key="k") is not None
    assert _pay(db, settings, clock, session, key="k") is None  # the key is used
    assert _pay(db, settings, clock, session, amount=5000) is None  # the balance is short
    with db.write() as tx:
        rules.put(
            tx,
            agent_id=agent,
            rule_type=RuleType.DAILY_LIMIT,
            params=rules.parse_params(RuleType.DAILY_LIMIT, {"daily_max": "1000"}),
            action=Action.SUSPEND_AGENT,
            now=clock.now(),
            actor="test",
        )
    assert _pay(db, settings, clock, session, amount=700) is None  # 800 would reach the warning
    assert _pay(db, settings, clock, session, amount=100) is not None
    assert _pay(db, settings, clock, session) is not None
    assert _pay(db, settings, clock, session) is None  # max_transactions
    assert session_row(db, session) == {"spent": 300, "reserved": 0, "tx_count": 3}
    assert statuses(db, session) == {"CONFIRMED": 3}
    assert balance(db, agent) == 700
    with db.read() as tx:
        assert (
            tx.scalar("SELECT COUNT(*) FROM audit_log WHERE session_id = :s", {"s": session}) == 12
        )


def test_a_rule_changed_after_a_payment_applies_to_the_next_one(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    """The admission remembered for a session is checked by the CAS, not trusted."""
    agent = _figured_agent(db, balance=1000)
    session = factory.session(db, agent, now=clock.now())
    service = Transactions(db, clock, settings)
    assert service.submit(session, transfer(10)).reply.body["status"] == "CONFIRMED"
    assert service.admissions.get(session) is not None
    with db.write() as tx:
        rules.put(
            tx,
            agent_id=agent,
            rule_type=RuleType.HOURLY_RATE,
            params=rules.parse_params(RuleType.HOURLY_RATE, {"max_tx_per_hour": 1}),
            action=Action.SUSPEND_AGENT,
            now=clock.now(),
            actor="test",
        )
    with pytest.raises(RacefreeError) as refused:
        service.submit(session, transfer(10))
    assert refused.value.code is AgentCode.AGENT_SUSPENDED
    assert statuses(db, session) == {"CONFIRMED": 1}


@pytest.mark.parametrize("engine", ["postgresql"])
def test_an_account_row_held_elsewhere_is_not_waited_for(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    """A payment in flight holds its account row: the one-commit path steps aside at once."""
    agent = _figured_agent(db, balance=1000)
    session = factory.session(db, agent, now=clock.now())
    outcome: list[Any] = []
    with hold_writer_lock(db, account_of=agent):
        started = time.monotonic()
        payer = threading.Thread(target=lambda: outcome.append(_pay(db, settings, clock, session)))
        payer.start()
        payer.join(10)
        assert not payer.is_alive()
        assert time.monotonic() - started < 5
    assert outcome == [None]
    assert session_row(db, session) == {"spent": 0, "reserved": 0, "tx_count": 0}
    assert statuses(db, session) == {}
    assert _pay(db, settings, clock, session) is not None  # and once it is free, it pays


class _CountingWrites:
    """The real database, counting its write transactions."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def write(self) -> Any:
        self.writes += 1
        return self.db.write()


class _OwnLedger(LedgerExecutor):
    """The ledger as another executor would be: its steps run one by one."""


@pytest.mark.parametrize("key", [None, "key-1"])
def test_the_step_path_keeps_the_reply_in_the_outcome_s_commit(
    db: Database, clock: ManualClock, settings: Settings, key: str | None
) -> None:
    agent = factory.agent(db, owner=OWNER_PUBLIC, balance=1000)
    session = factory.session(db, agent, now=clock.now())
    counting = _CountingWrites(db)
    service = Transactions(counting, clock, settings, _OwnLedger(db, clock))  # type: ignore[arg-type]
    outcome = service.submit(session, transfer(100), idempotency_key=key)
    assert outcome.reply.body["status"] == "CONFIRMED"
    # admission + claim; EXECUTING -> SUBMITTED; the outcome (with the stored reply); the
    # executor's own payment is its own write, on its own connection
    assert counting.writes == 3
    if key is not None:
        replay = service.submit(session, transfer(100), idempotency_key=key)
        assert (replay.replayed, replay.reply) == (True, outcome.reply)


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_figures_row_held_by_another_mover_is_not_waited_for(
    db: Database, db_url: str, clock: ManualClock, settings: Settings
) -> None:
    """Another transaction moving the agent's figures holds their row: this one steps aside
    (what it would count may be about to change), and pays once the row is free."""
    agent = _figured_agent(db, balance=1000)
    session = factory.session(db, agent, now=clock.now())
    with Database.from_url(db_url) as harness, harness.write() as tx:
        tx.execute("SELECT 1 FROM agent_figures WHERE agent_id = :a FOR UPDATE", {"a": agent})
        started = time.monotonic()
        assert _pay(db, settings, clock, session) is None
        assert time.monotonic() - started < 5
    assert statuses(db, session) == {}
    assert _pay(db, settings, clock, session) is not None
    assert session_row(db, session) == {"spent": 100, "reserved": 0, "tx_count": 1}


def _verify_chain(db_url: str) -> subprocess.CompletedProcess[str]:
    """``racefree audit verify`` on the database, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "racefree", "audit", "verify", "--database-url", db_url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_statement_payments_join_the_audit_chain_among_concurrent_writers(
    db: Database, db_url: str, clock: ManualClock, settings: Settings
) -> None:
    """Issue 9 over issue 11: the payment's four audit rows are chained as every other row
    is. Payers on the one-commit path race single-entry appenders, a many-entry appender
    (the kill switch's cancel-open shape) and step-path payments of one shared session:
    every payment commits once with its rows, ids stay contiguous, each payment's four rows
    are consecutive (appended together, under the head's lock), and the chain verifies."""
    before = len(_audit_ids(db))
    payers = [
        factory.session(db, _figured_agent(db, balance=1000), now=clock.now()) for _ in range(6)
    ]
    shared_agent = _figured_agent(db, balance=10_000)
    shared = factory.session(db, shared_agent, now=clock.now())
    paid: list[str] = []

    def act(i: int) -> None:
        if i < 6:  # the one-commit path, three payments each
            for _ in range(3):
                done = _pay(db, settings, clock, payers[i], amount=10)
                assert done is not None  # nothing else holds this agent's rows
                paid.append(done.transaction.id)
        elif i < 9:  # audited writes of one entry each
            for n in range(5):
                with db.write() as tx:
                    audit.record(tx, "TEST_EVENT", at=clock.now(), actor=f"writer-{i}-{n}")
        elif i == 9:  # one transaction of many entries
            with db.write() as tx:
                rows = [
                    {"agent_id": None, "session_id": None, "transaction_id": f"t-{n}"}
                    for n in range(120)
                ]
                audit.record_each(tx, "TEST_MANY", rows, at=clock.now(), actor="many")
        else:  # one session's payments by the service: either path, as the rows allow
            service = Transactions(db, clock, settings)
            for _ in range(3):
                assert service.submit(shared, transfer(10)).reply.body["status"] == "CONFIRMED"

    assert tally(race(12, act)) == {"won": 12}
    assert len(paid) == 18
    ids = _audit_ids(db)
    assert len(ids) == before + 18 * 4 + 3 * 5 + 120 + 6 * 4
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # no id skipped or taken twice
    with db.read() as tx:
        for txn_id in paid:
            rows = tx.all(
                "SELECT id, txid FROM audit_log WHERE transaction_id = :t ORDER BY id",
                {"t": txn_id},
            )
            assert [r["id"] - rows[0]["id"] for r in rows] == [0, 1, 2, 3]
            assert len({r["txid"] for r in rows}) == 1  # one commit
        report = audit.verify(tx)
    assert report.intact, report
    assert report.entries == len(ids)
    result = _verify_chain(db_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert balance(db, shared_agent) == 10_000 - 6 * 10


def test_a_destination_that_json_escapes_is_chained_as_it_is_stored(
    db: Database, settings: Settings, clock: ManualClock
) -> None:
    """The hashes cover each row's payload byte for byte, whatever the destination holds:
    quotes, backslashes, control characters and non-ASCII text (on PostgreSQL the
    statement takes each payload back out of a JSON array)."""
    session = factory.session(db, _figured_agent(db, balance=1000), now=clock.now())
    destination = 'acct:"quoted" \\back\\slash \\u0041 é ☃ \t\n end'
    done = _pay(db, settings, clock, session, amount=10, destination=destination)
    assert done is not None
    with db.read() as tx:
        rows = tx.all(
            "SELECT details FROM audit_log WHERE transaction_id = :t ORDER BY id",
            {"t": done.transaction.id},
        )
        report = audit.verify(tx)
    assert json.loads(rows[0]["details"])["destination"] == destination
    assert report.intact, report


def _audit_ids(db: Database) -> list[int]:
    with db.read() as tx:
        return [r["id"] for r in tx.all("SELECT id FROM audit_log ORDER BY id")]
