"""sessions.cleanup_expired: a guarded DELETE that can never remove a just-renewed session."""

from __future__ import annotations

from dataclasses import replace

from racefree import sessions
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.sessions import Policy
from racefree.testing import Outcome, race
from tests import factory
from tests.factory import POLICY


def _cleanup(db: Database, now: int, retention_s: int = 0) -> int:
    with db.write() as tx:
        return sessions.cleanup_expired(tx, now=now, retention_s=retention_s)


def _exists(db: Database, session_id: str) -> bool:
    with db.read() as tx:
        return tx.scalar("SELECT 1 FROM sessions WHERE id = :id", {"id": session_id}) is not None


def test_only_sessions_expired_for_the_retention_are_deleted(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    old = factory.issue_session(db, clock, agent_id).session
    clock.advance(10)
    young = factory.issue_session(db, clock, agent_id).session
    assert _cleanup(db, old.expires_at - 1) == 0
    assert _cleanup(db, young.expires_at, retention_s=10) == 1
    assert not _exists(db, old.id) and _exists(db, young.id)
    with db.read() as tx:
        [entry] = audit.entries(tx, event_type="SESSIONS_CLEANED_UP")
    assert entry.details == {"deleted": 1, "retention_s": 10}


def test_sessions_that_transactions_reference_are_kept(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    session = factory.issue_session(db, clock, agent_id).session
    with db.write() as tx:
        tx.execute(
            "INSERT INTO transactions (id, agent_id, session_id, type, amount, destination,"
            " status, tier, created_at, updated_at) VALUES ('t1', :a, :s, 'TRANSFER', 5, 'x',"
            " 'CONFIRMED', 'INSTANT', 0, 0)",
            {"a": agent_id, "s": session.id},
        )
    assert _cleanup(db, session.expires_at) == 0
    assert _exists(db, session.id)


def _renewal_against_cleanup(
    db: Database, clock: ManualClock, agent_id: str, policy: Policy
) -> tuple[Outcome, Outcome, str]:
    issued = factory.issue_session(db, clock, agent_id, policy)
    expires_at = issued.session.expires_at

    def attempt(i: int) -> object:
        if i == 0:  # the renewal sees the session one second before expiry
            return sessions.renew(
                db, issued.session.id, issued.token, now=expires_at - 1, policy=policy
            )
        return _cleanup(db, expires_at)  # the cleanup sees it expired

    renewal, cleanup = race(2, attempt)
    return renewal, cleanup, issued.session.id


def test_cleanup_racing_a_renewal_never_deletes_the_renewed_session(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    policy = replace(POLICY, min_elapsed=0.0)
    for _ in range(5):
        renewal, cleanup, session_id = _renewal_against_cleanup(db, clock, agent_id, policy)
        if renewal.won:
            assert cleanup.value == 0
            assert _exists(db, session_id)
        else:
            assert isinstance(renewal.error, RacefreeError)
            assert renewal.code == "SESSION_NOT_FOUND"
            assert cleanup.value == 1
            assert not _exists(db, session_id)
