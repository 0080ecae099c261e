"""core.machine: the transition table is validated, diagrammed, and applied as a CAS."""

from __future__ import annotations

import json

import pytest

from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.condition import Condition
from racefree.core.db import Database, Tx
from racefree.core.errors import GeneralCode, MachineCode, RacefreeError
from racefree.core.machine import AuditContext, MachineDefinitionError, StateMachine, move
from racefree.killswitch.errors import KillSwitchCode
from racefree.testing import race, tally

DOOR = StateMachine(
    "door",
    table="doors",
    key_column="id",
    state_column="state",
    version_column="version",
    states=("CLOSED", "OPEN", "LOCKED", "GONE"),
    initial="CLOSED",
    not_found=GeneralCode.NOT_FOUND,
    transitions=(
        move(
            "open",
            "CLOSED",
            "OPEN",
            conflict=MachineCode.INVALID_STATE_TRANSITION,
            audit_event="DOOR_OPENED",
        ),
        move("close", "OPEN", "CLOSED", conflict=MachineCode.INVALID_STATE_TRANSITION),
        move(
            "lock",
            "CLOSED",
            "LOCKED",
            conflict=KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE,
            conflict_by_state={"OPEN": KillSwitchCode.INVALID_RECOVERY_STATE},
            audit_event="DOOR_LOCKED",
            severity=Severity.CRITICAL,
        ),
        move(
            "remove",
            ("CLOSED", "OPEN", "LOCKED"),
            "GONE",
            conflict=MachineCode.INVALID_STATE_TRANSITION,
        ),
    ),
)


@pytest.fixture
def doors(db: Database) -> Database:
    """A test-only table shaped like every racefree state table, plus a cascade target."""
    with db.write() as tx:
        tx.execute(
            "CREATE TABLE doors (id TEXT PRIMARY KEY, state TEXT NOT NULL,"
            " version BIGINT NOT NULL DEFAULT 0, updated_at BIGINT NOT NULL)"
        )
        tx.execute(
            "CREATE TABLE handles (id TEXT PRIMARY KEY, door_id TEXT NOT NULL,"
            " locked INTEGER NOT NULL DEFAULT 0)"
        )
        tx.execute("INSERT INTO doors (id, state, updated_at) VALUES ('d1', 'CLOSED', 0)")
        for i in range(5):
            tx.execute("INSERT INTO handles (id, door_id) VALUES (:id, 'd1')", {"id": f"h{i}"})
    return db


def _lock_handles(tx: Tx, row: dict[str, object]) -> int:
    return tx.execute("UPDATE handles SET locked = 1 WHERE door_id = :id", {"id": row["id"]})


def _audit_rows(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type=event_type)


class TestDefinition:
    def test_unknown_state_is_refused(self) -> None:
        with pytest.raises(MachineDefinitionError, match="unknown states"):
            StateMachine(
                "m",
                table="t",
                key_column="id",
                state_column="s",
                states=("A", "B"),
                initial="A",
                transitions=(move("go", "A", "C", conflict=GeneralCode.NOT_FOUND),),
            )

    def test_unreachable_state_is_refused(self) -> None:
        with pytest.raises(MachineDefinitionError, match=r"unreachable states \['C'\]"):
            StateMachine(
                "m",
                table="t",
                key_column="id",
                state_column="s",
                states=("A", "B", "C"),
                initial="A",
                transitions=(move("go", "A", "B", conflict=GeneralCode.NOT_FOUND),),
            )

    def test_duplicate_transition_names_are_refused(self) -> None:
        with pytest.raises(MachineDefinitionError, match="duplicate transition"):
            StateMachine(
                "m",
                table="t",
                key_column="id",
                state_column="s",
                states=("A", "B"),
                initial="A",
                transitions=(
                    move("go", "A", "B", conflict=GeneralCode.NOT_FOUND),
                    move("go", "B", "A", conflict=GeneralCode.NOT_FOUND),
                ),
            )

    def test_terminal_states_are_those_nothing_leaves(self) -> None:
        assert DOOR.terminal == {"GONE"}

    def test_mermaid_lists_every_move(self) -> None:
        diagram = DOOR.to_mermaid()
        assert diagram.startswith("stateDiagram-v2\n    [*] --> CLOSED\n")
        assert "    CLOSED --> OPEN: open\n" in diagram
        assert "    LOCKED --> GONE: remove\n" in diagram
        assert "    GONE --> [*]\n" in diagram

    def test_check_raises_the_typed_conflict_of_the_current_state(self) -> None:
        assert DOOR.check("CLOSED", "lock").target == "LOCKED"
        with pytest.raises(RacefreeError) as info:
            DOOR.check("OPEN", "lock")
        assert info.value.code is KillSwitchCode.INVALID_RECOVERY_STATE
        assert info.value.details == {
            "current": "OPEN",
            "requested": "LOCKED",
            "allowed": ["CLOSED", "GONE"],
        }


class TestTransition:
    def test_winner_gets_the_new_row_and_one_audit_row(self, doors: Database) -> None:
        with doors.write() as tx:
            result = DOOR.transition(
                tx, "open", "d1", now=100, audit_context=AuditContext(actor="alice")
            )
        assert result.row["state"] == "OPEN"
        assert result.row["version"] == 1
        assert result.row["updated_at"] == 100
        [entry] = _audit_rows(doors, "DOOR_OPENED")
        assert entry.actor == "alice"
        assert entry.details == {"from": "CLOSED", "to": "OPEN"}

    def test_missing_row_is_not_found(self, doors: Database) -> None:
        with pytest.raises(RacefreeError) as info, doors.write() as tx:
            DOOR.transition(tx, "open", "nope", now=1)
        assert info.value.code is GeneralCode.NOT_FOUND

    def test_wrong_state_is_the_transitions_conflict_with_details(self, doors: Database) -> None:
        with doors.write() as tx:
            DOOR.transition(tx, "open", "d1", now=1)
        with pytest.raises(RacefreeError) as info, doors.write() as tx:
            DOOR.transition(tx, "open", "d1", now=2)
        assert info.value.code is MachineCode.INVALID_STATE_TRANSITION
        assert info.value.details == {
            "current": "OPEN",
            "requested": "OPEN",
            "allowed": ["CLOSED", "GONE"],
        }

    def test_failed_extra_guard_is_a_conflict_and_changes_nothing(self, doors: Database) -> None:
        with pytest.raises(RacefreeError) as info, doors.write() as tx:
            DOOR.transition(tx, "open", "d1", now=1, where=Condition.of("version > :min", min=5))
        assert info.value.code is MachineCode.INVALID_STATE_TRANSITION
        with doors.read() as tx:
            assert DOOR.current(tx, "d1") == "CLOSED"

    def test_cascade_effects_are_returned_and_audited(self, doors: Database) -> None:
        with doors.write() as tx:
            result = DOOR.transition(
                tx,
                "lock",
                "d1",
                now=5,
                cascades={"handles_locked": _lock_handles},
                audit_context=AuditContext(details={"reason": "drill"}),
            )
        assert result.effects == {"handles_locked": 5}
        [entry] = _audit_rows(doors, "DOOR_LOCKED")
        assert entry.severity is Severity.CRITICAL
        assert entry.details == {
            "from": "CLOSED",
            "to": "LOCKED",
            "reason": "drill",
            "handles_locked": 5,
        }

    def test_cascade_that_raises_midway_leaves_no_trace(self, doors: Database) -> None:
        def explode(tx: Tx, row: dict[str, object]) -> None:
            raise RuntimeError("injected failure after the first cascade")

        with pytest.raises(RuntimeError, match="injected"), doors.write() as tx:
            DOOR.transition(
                tx, "lock", "d1", now=5, cascades={"handles_locked": _lock_handles, "boom": explode}
            )
        with doors.read() as tx:
            assert tx.one("SELECT state, version FROM doors") == {"state": "CLOSED", "version": 0}
            assert tx.scalar("SELECT COUNT(*) FROM handles WHERE locked = 1") == 0
        assert _audit_rows(doors, "DOOR_LOCKED") == []


def test_twenty_writers_racing_one_transition_have_exactly_one_winner(doors: Database) -> None:
    def attempt(i: int) -> str:
        with doors.write() as tx:
            result = DOOR.transition(
                tx,
                "lock",
                "d1",
                now=10,
                cascades={"h": _lock_handles},
                audit_context=AuditContext(actor=f"racer-{i}"),
            )
            return str(result.row["state"])

    outcomes = race(20, attempt)

    assert tally(outcomes) == {"won": 1, "KILL_SWITCH_ALREADY_ACTIVE": 19}
    losers = [o.error for o in outcomes if not o.won]
    assert all(isinstance(e, RacefreeError) and e.status == 409 for e in losers)
    with doors.read() as tx:
        assert tx.one("SELECT state, version FROM doors") == {"state": "LOCKED", "version": 1}
        assert tx.scalar("SELECT COUNT(*) FROM handles WHERE locked = 1") == 5
    [entry] = _audit_rows(doors, "DOOR_LOCKED")
    winner = next(o for o in outcomes if o.won)
    assert winner.value == "LOCKED"
    assert json.dumps(entry.details["h"]) == "5"
