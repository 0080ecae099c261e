"""sessions: issue, get, list, revoke; tokens shown once and stored as hashes only."""

from __future__ import annotations

import json

import pytest

from racefree import agents, sessions
from racefree.agents.errors import AgentCode
from racefree.core import audit, tokens
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import Code, GeneralCode, RacefreeError
from racefree.owners.errors import OwnerCode
from racefree.sessions import Constraints
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import SESSION_PREFIX
from racefree.testing import race, tally
from tests import factory
from tests.factory import POLICY


def test_issue_returns_a_well_formed_token_and_stores_only_its_hash(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    assert tokens.well_formed(issued.token, SESSION_PREFIX)
    assert issued.session.expires_at == clock.now() + POLICY.expires_in
    assert issued.session.absolute_expires_at == clock.now() + POLICY.absolute_lifetime
    assert issued.session.renewal_count == 0
    with db.read() as tx:
        row = tx.one("SELECT * FROM sessions WHERE id = :id", {"id": issued.session.id})
        assert row is not None
        assert row["token_hash"] == tokens.digest(issued.token)
        assert issued.token not in json.dumps(row)
        [entry] = audit.entries(tx, event_type="SESSION_CREATED")
    assert entry.session_id == issued.session.id


def test_explicit_expiry_renewals_and_constraints_are_stored(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    limits = Constraints.parse(
        {"max_amount_per_tx": "100", "max_total_amount": "500", "max_transactions": 3}
    )
    issued = factory.issue_session(
        db, clock, agent_id, expires_in=50, max_renewals=0, constraints=limits
    )
    assert (issued.session.expires_in, issued.session.max_renewals) == (50, 0)
    assert issued.session.constraints == limits
    with db.read() as tx:
        stored = tx.scalar(
            "SELECT constraints FROM sessions WHERE id = :id", {"id": issued.session.id}
        )
    assert json.loads(stored) == {
        "max_amount_per_tx": 100,
        "max_total_amount": 500,
        "max_transactions": 3,
    }


@pytest.mark.parametrize(
    "raw",
    [
        {"max_amount_per_tx": 100},
        {"max_total_amount": "-5"},
        {"max_total_amount": "1e3"},
        {"max_transactions": -1},
        {"max_transactions": True},
        {"max_transactions": "3"},
        {"unknown": "1"},
    ],
    ids=[
        "amount-not-string",
        "negative",
        "exponent",
        "count-negative",
        "count-bool",
        "count-string",
        "unknown-key",
    ],
)
def test_bad_constraints_are_validation_errors(raw: dict[str, object]) -> None:
    with pytest.raises(RacefreeError) as info:
        Constraints.parse(raw)
    assert info.value.code is GeneralCode.VALIDATION_ERROR
    assert info.value.details["issues"]


@pytest.mark.parametrize(("expires_in", "max_renewals"), [(0, 1), (1001, 1), (10, -1)])
def test_out_of_range_expiry_or_renewals_are_validation_errors(
    db: Database, clock: ManualClock, agent_id: str, expires_in: int, max_renewals: int
) -> None:
    with pytest.raises(RacefreeError) as info:
        factory.issue_session(db, clock, agent_id, expires_in=expires_in, max_renewals=max_renewals)
    assert info.value.code is GeneralCode.VALIDATION_ERROR


@pytest.mark.parametrize(
    ("action", "code"),
    [("suspend", AgentCode.AGENT_SUSPENDED), ("terminate", AgentCode.AGENT_TERMINATED)],
)
def test_suspended_and_terminated_agents_cannot_open_sessions(
    db: Database, clock: ManualClock, agent_id: str, action: str, code: Code
) -> None:
    with db.write() as tx:
        getattr(agents, action)(tx, agent_id, now=clock.now())
    with pytest.raises(RacefreeError) as info:
        factory.issue_session(db, clock, agent_id)
    assert info.value.code is code
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM sessions") == 0


def test_unknown_agent_cannot_open_a_session(db: Database, clock: ManualClock) -> None:
    with pytest.raises(RacefreeError) as info:
        factory.issue_session(db, clock, "no-such-agent")
    assert info.value.code is OwnerCode.AGENT_NOT_FOUND


def test_list_filters_by_agent_and_activity_in_id_order(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    first = factory.issue_session(db, clock, agent_id).session.id
    second = factory.issue_session(db, clock, agent_id).session.id
    with db.write() as tx:
        other = agents.create(tx, name="other", now=clock.now()).id
        sessions.revoke(tx, second, now=clock.now())
    third = factory.issue_session(db, clock, other).session.id
    with db.read() as tx:
        everything = [s.id for s in sessions.list_sessions(tx, now=clock.now())]
        mine = [s.id for s in sessions.list_sessions(tx, now=clock.now(), agent_id=agent_id)]
        active = [s.id for s in sessions.list_sessions(tx, now=clock.now(), active_only=True)]
        page = [s.id for s in sessions.list_sessions(tx, now=clock.now(), after_id=first, limit=1)]
    assert everything == [first, second, third]
    assert mine == [first, second]
    assert active == [first, third]
    assert page == [second]


def test_revoke_then_revoke_again_is_already_revoked(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    session_id = factory.issue_session(db, clock, agent_id).session.id
    with db.write() as tx:
        revoked = sessions.revoke(tx, session_id, now=clock.now())
    assert (revoked.revoked_at, revoked.revoke_reason) == (clock.now(), "operator")
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        sessions.revoke(tx, session_id, now=clock.now())
    assert info.value.code is SessionCode.SESSION_ALREADY_REVOKED
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        sessions.revoke(tx, "missing", now=clock.now())
    assert info.value.code is SessionCode.SESSION_NOT_FOUND


def test_concurrent_revokes_have_one_winner_and_one_audit_row(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    session_id = factory.issue_session(db, clock, agent_id).session.id

    def attempt(i: int) -> None:
        with db.write() as tx:
            sessions.revoke(tx, session_id, now=clock.now(), actor=f"op-{i}")

    assert tally(race(8, attempt)) == {"won": 1, "SESSION_ALREADY_REVOKED": 7}
    with db.read() as tx:
        assert len(audit.entries(tx, event_type="SESSION_REVOKED")) == 1


def test_terminating_an_agent_revokes_its_sessions(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    with db.write() as tx:
        agents.terminate(tx, agent_id, now=clock.now())
        session = sessions.get(tx, issued.session.id)
    assert session.revoke_reason == "agent_terminated"
    with pytest.raises(RacefreeError) as info:
        sessions.authenticate(db, issued.token, now=clock.now(), policy=POLICY)
    assert info.value.code is SessionCode.SESSION_REVOKED
