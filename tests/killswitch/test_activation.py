"""Activation: one CAS winner, the whole cascade in its transaction, nothing on failure."""

from __future__ import annotations

import pytest

from racefree import killswitch
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.killswitch import status
from racefree.killswitch.errors import KillSwitchCode
from racefree.killswitch.machine import KILL_SWITCH
from racefree.system.errors import SystemCode
from racefree.testing import race, tally
from tests import factory


def _activate(
    db: Database, clock: ManualClock, reason: str = "test", actor: str = "operator:test"
) -> killswitch.Activation:
    return killswitch.activate_now(db, reason, now=clock.now(), actor=actor)


def _status(db: Database) -> status.KillSwitchStatus:
    with db.read() as tx:
        return status.read(tx)


def _count(db: Database, sql: str) -> int:
    with db.read() as tx:
        return int(tx.scalar(sql))


def _activations(db: Database) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type="KILL_SWITCH_ACTIVATED")


def test_activation_moves_normal_to_activated_and_records_who_and_why(
    db: Database, clock: ManualClock
) -> None:
    result = _activate(db, clock, reason="agent went rogue", actor="operator:alice")
    now = _status(db)
    assert (now.state, now.version, now.reason, now.actor) == (
        "ACTIVATED",
        1,
        "agent went rogue",
        "operator:alice",
    )
    assert now.activation_id == result.activation_id
    assert now.activated_at == clock.now()
    with db.read() as tx:
        assert not killswitch.is_normal(tx)


def test_the_cascade_stops_everything_open_and_leaves_the_rest_alone(
    db: Database, clock: ManualClock
) -> None:
    w = factory.world(db, now=clock.now())
    result = _activate(db, clock)

    assert result.sessions_revoked == len(w.live_sessions)
    assert result.transactions_cancelled == len(w.open_transactions)
    assert result.agents_suspended == len(w.active_agents)
    with db.read() as tx:
        for s in w.live_sessions:
            row = tx.one("SELECT * FROM sessions WHERE id = :id", {"id": s})
            assert row is not None
            assert (row["revoked_at"], row["revoke_reason"]) == (clock.now(), "kill_switch")
            assert row["reserved"] == 5  # only the open transactions' amounts came off
            assert row["spent"] == 100
        for s in w.revoked_sessions:  # revoked before: keeps its own time and reason
            row = tx.one("SELECT * FROM sessions WHERE id = :id", {"id": s})
            assert row is not None
            assert row["revoke_reason"] == "operator"
        for t in w.open_transactions:
            row = tx.one("SELECT status, error FROM transactions WHERE id = :id", {"id": t})
            assert row == {"status": "CANCELLED", "error": "KILL_SWITCH"}
        closed = tx.all("SELECT status, error FROM transactions WHERE error IS NULL")
        assert len(closed) == len(w.closed_transactions)
        for a in w.active_agents:
            row = tx.one("SELECT status, suspension_reason FROM agents WHERE id = :id", {"id": a})
            assert row == {"status": "SUSPENDED", "suspension_reason": "kill_switch"}
        held = tx.one(
            "SELECT status, suspension_reason FROM agents WHERE id = :id",
            {"id": w.operator_suspended[0]},
        )
        assert held == {"status": "SUSPENDED", "suspension_reason": "operator"}
        gone = tx.scalar("SELECT status FROM agents WHERE id = :id", {"id": w.terminated[0]})
        assert gone == "TERMINATED"


def test_the_audit_row_is_critical_and_carries_actor_reason_counts_and_duration(
    db: Database, clock: ManualClock
) -> None:
    w = factory.world(db, agents=2, now=clock.now())
    result = _activate(db, clock, reason="drill", actor="operator:bob")
    [entry] = _activations(db)
    assert entry.severity is audit.Severity.CRITICAL
    assert entry.actor == "operator:bob"
    assert entry.details["reason"] == "drill"
    assert entry.details["activation_id"] == result.activation_id
    assert entry.details["sessions_revoked"] == len(w.live_sessions)
    assert entry.details["transactions_cancelled"] == len(w.open_transactions)
    assert entry.details["agents_suspended"] == len(w.active_agents)
    assert entry.details["duration_ms"] >= 0


def test_the_automatic_hook_uses_the_same_machine_with_actor_auto(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        result = killswitch.activate(tx, "spend rate rule", now=clock.now())
    assert result.actor == "auto"
    assert _status(db).actor == "auto"
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        killswitch.activate(tx, "again", now=clock.now())
    assert info.value.code is KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE


@pytest.mark.parametrize("state", ["ACTIVATED", "RECOVERING"])
def test_activating_an_engaged_switch_is_409_already_active(
    db: Database, clock: ManualClock, state: str
) -> None:
    with db.write() as tx:
        tx.execute("UPDATE kill_switch SET state = :s", {"s": state})
    with pytest.raises(RacefreeError) as info:
        _activate(db, clock)
    assert info.value.code is KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE
    assert info.value.details["current"] == state
    assert _activations(db) == []


def test_activated_cannot_go_straight_back_to_normal() -> None:
    assert KILL_SWITCH.targets("ACTIVATED") == ["RECOVERING"]
    assert KILL_SWITCH.targets("RECOVERING") == ["ACTIVATED", "NORMAL"]
    assert KILL_SWITCH.targets("NORMAL") == ["ACTIVATED"]


def test_twenty_racing_activations_have_one_winner_and_one_cascade(
    db: Database, clock: ManualClock
) -> None:
    w = factory.world(db, agents=4, now=clock.now())
    outcomes = race(20, lambda i: _activate(db, clock, reason=f"racer {i}"))
    assert tally(outcomes) == {"won": 1, "KILL_SWITCH_ALREADY_ACTIVE": 19}
    [winner] = [o.value for o in outcomes if o.won]
    assert winner.sessions_revoked == len(w.live_sessions)
    assert winner.transactions_cancelled == len(w.open_transactions)
    [entry] = _activations(db)
    assert entry.details["activation_id"] == winner.activation_id
    assert _status(db).version == 1
    assert _count(db, "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL") == 0
    assert (
        _count(
            db,
            "SELECT COUNT(*) FROM transactions WHERE status IN ('PENDING', 'QUEUED', 'EXECUTING')",
        )
        == 0
    )
    # reservations released exactly once, not once per racer
    assert _count(db, "SELECT SUM(reserved) FROM sessions") == 5 * len(w.live_sessions)


def _inject_failure_on_transaction_updates(db: Database) -> None:
    with db.write() as tx:
        if tx.is_sqlite:
            tx.execute(
                "CREATE TRIGGER fail_cancel BEFORE UPDATE ON transactions"
                " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        else:
            tx.execute(
                "CREATE FUNCTION fail_cancel() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
            )
            tx.execute(
                "CREATE TRIGGER fail_cancel BEFORE UPDATE ON transactions"
                " FOR EACH ROW EXECUTE FUNCTION fail_cancel()"
            )


def test_a_failure_midway_through_the_cascade_leaves_everything_as_before(
    db: Database, clock: ManualClock
) -> None:
    w = factory.world(db, now=clock.now())
    # transactions are cancelled last, after agents were suspended and sessions revoked
    _inject_failure_on_transaction_updates(db)
    with pytest.raises(Exception, match="injected failure"):
        _activate(db, clock)
    now = _status(db)
    assert (now.state, now.version, now.activation_id) == ("NORMAL", 0, None)
    assert _count(db, "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL") == len(
        w.live_sessions
    )
    assert _count(db, "SELECT COUNT(*) FROM transactions WHERE status = 'CANCELLED'") == len(
        w.live_sessions
    )  # only the seeded CANCELLED ones
    assert _count(db, "SELECT SUM(reserved) FROM sessions WHERE revoked_at IS NULL") == sum(
        w.reserved.values()
    ) + 5 * len(w.live_sessions)
    assert _count(db, "SELECT COUNT(*) FROM agents WHERE status = 'ACTIVE'") == len(w.active_agents)
    assert _activations(db) == []


def test_a_session_revoked_earlier_still_gets_its_open_reservations_back(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        a = factory.agent(tx, now=clock.now())
        s = factory.session(
            tx, a, revoked_at=clock.now() - 5, revoke_reason="operator", reserved=40
        )
        factory.transaction(tx, a, s, status="QUEUED", amount=40, now=clock.now())
    result = _activate(db, clock)
    assert (result.sessions_revoked, result.transactions_cancelled) == (0, 1)
    with db.read() as tx:
        row = tx.one("SELECT reserved, revoke_reason FROM sessions WHERE id = :id", {"id": s})
    assert row == {"reserved": 0, "revoke_reason": "operator"}


def test_inserting_writers_hold_the_switch_normal_and_are_refused_once_engaged(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        status.hold_normal(tx)  # NORMAL: nothing happens
    killswitch.activate_now(db, "drill", now=clock.now())
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        status.hold_normal(tx)
    assert info.value.code is SystemCode.SYSTEM_LOCKED
    assert info.value.details["state"] == "ACTIVATED"
    assert info.value.details["reason"] == "drill"
