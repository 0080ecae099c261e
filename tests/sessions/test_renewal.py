"""sessions.renew: one guarded UPDATE rotates the token; racers get exact, typed answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from racefree import agents, sessions
from racefree.agents.errors import AgentCode
from racefree.core import audit, tokens
from racefree.core.audit import Severity
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import Code, RacefreeError
from racefree.operators.errors import AuthCode
from racefree.sessions import CONFLICT_WINDOW_S, Policy
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import SESSION_PREFIX
from racefree.testing import race, tally
from tests import factory
from tests.factory import POLICY

NOW_RENEWABLE = replace(POLICY, min_elapsed=0.0)
GRACE = replace(NOW_RENEWABLE, grace_s=30)


def _renew(
    db: Database, clock: ManualClock, session_id: str, token: str, policy: Policy = POLICY
) -> sessions.Renewal:
    return sessions.renew(db, session_id, token, now=clock.now(), policy=policy)


def _refused(
    db: Database, clock: ManualClock, session_id: str, token: str, policy: Policy = POLICY
) -> RacefreeError:
    with pytest.raises(RacefreeError) as info:
        _renew(db, clock, session_id, token, policy)
    return info.value


def _row(db: Database, session_id: str) -> dict[str, object]:
    with db.read() as tx:
        row = tx.one("SELECT * FROM sessions WHERE id = :id", {"id": session_id})
    assert row is not None
    return row


def _events(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type=event_type)


def test_renewal_rotates_the_token_and_extends_the_expiry(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    clock.advance(50)
    renewal = _renew(db, clock, issued.session.id, issued.token)
    assert renewal.token != issued.token and not renewal.replayed
    assert renewal.session.renewal_count == 1
    assert renewal.session.expires_at == clock.now() + POLICY.expires_in
    assert renewal.session.last_renewed_at == clock.now()
    row = _row(db, issued.session.id)
    assert row["token_hash"] == tokens.digest(renewal.token)
    assert row["previous_token_hash"] == tokens.digest(issued.token)
    who = sessions.authenticate(db, renewal.token, now=clock.now(), policy=POLICY)
    assert who.session_id == issued.session.id
    [entry] = _events(db, "SESSION_RENEWED")
    assert entry.session_id == issued.session.id


@pytest.mark.parametrize("policy", [NOW_RENEWABLE, GRACE], ids=["no-grace", "grace"])
def test_twenty_racing_renewals_of_one_session(
    db: Database, clock: ManualClock, agent_id: str, policy: Policy
) -> None:
    issued = factory.issue_session(db, clock, agent_id, policy)
    outcomes = race(20, lambda i: _renew(db, clock, issued.session.id, issued.token, policy))

    if policy.grace_s:
        assert tally(outcomes) == {"won": 20}
        assert len({o.value.token for o in outcomes}) == 1
        assert sum(not o.value.replayed for o in outcomes) == 1
    else:
        assert tally(outcomes) == {"won": 1, "RENEWAL_CONFLICT": 19}
        losers = [o.error for o in outcomes if not o.won]
        assert all(isinstance(e, RacefreeError) and e.status == 409 and e.hint for e in losers)
    winner = next(o.value for o in outcomes if o.won)
    assert (
        sessions.authenticate(db, winner.token, now=clock.now(), policy=policy).session_id
        == issued.session.id
    )
    with pytest.raises(RacefreeError) as info:
        sessions.authenticate(db, issued.token, now=clock.now(), policy=policy)
    assert info.value.status == 401
    assert _row(db, issued.session.id)["renewal_count"] == 1
    assert len(_events(db, "SESSION_RENEWED")) == 1


def test_max_renewals_zero_refuses_the_first_renewal(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE, max_renewals=0)
    error = _refused(db, clock, issued.session.id, issued.token, NOW_RENEWABLE)
    assert error.code is SessionCode.RENEWAL_LIMIT_REACHED
    assert _row(db, issued.session.id)["token_hash"] == tokens.digest(issued.token)


def test_the_last_allowed_renewal_succeeds_and_the_next_is_refused(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE, max_renewals=1)
    renewal = _renew(db, clock, issued.session.id, issued.token, NOW_RENEWABLE)
    assert renewal.session.renewal_count == 1
    error = _refused(db, clock, issued.session.id, renewal.token, NOW_RENEWABLE)
    assert error.code is SessionCode.RENEWAL_LIMIT_REACHED


def test_the_absolute_lifetime_edge(db: Database, clock: ManualClock, agent_id: str) -> None:
    policy = Policy(expires_in=400, max_renewals=10, absolute_lifetime=1000, min_elapsed=0.5)
    start = clock.now()
    issued = factory.issue_session(db, clock, agent_id, policy)
    token = issued.token
    for at in (200, 400):
        clock.set(start + at)
        token = _renew(db, clock, issued.session.id, token, policy).token

    clock.set(start + 601)  # 601 + 400 > 1000
    error = _refused(db, clock, issued.session.id, token, policy)
    assert error.code is SessionCode.SESSION_ABSOLUTE_LIFETIME_EXCEEDED

    clock.set(start + 600)  # 600 + 400 == 1000: allowed, and never beyond the absolute expiry
    renewal = _renew(db, clock, issued.session.id, token, policy)
    assert renewal.session.expires_at == renewal.session.absolute_expires_at == start + 1000


def test_the_elapsed_fraction_edge_rounds_up_and_says_when_to_retry(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    policy = replace(POLICY, expires_in=101)  # half of 101 s is 50.5 s -> 51 whole seconds
    issued = factory.issue_session(db, clock, agent_id, policy)
    clock.advance(50)
    error = _refused(db, clock, issued.session.id, issued.token, policy)
    assert error.code is SessionCode.RENEWAL_TOO_EARLY
    assert error.retryable and error.retry_after == 1
    assert error.headers() == {"Retry-After": "1"}
    clock.advance(1)
    assert _renew(db, clock, issued.session.id, issued.token, policy).session.renewal_count == 1


def test_the_elapsed_fraction_counts_from_the_last_renewal(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    clock.advance(50)
    token = _renew(db, clock, issued.session.id, issued.token).token
    clock.advance(49)
    error = _refused(db, clock, issued.session.id, token)
    assert (error.code, error.retry_after) == (SessionCode.RENEWAL_TOO_EARLY, 1)


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        ("revoke", SessionCode.SESSION_REVOKED),
        ("expire", SessionCode.TOKEN_EXPIRED),
        ("suspend", AgentCode.AGENT_SUSPENDED),
    ],
)
def test_unusable_sessions_are_refused_with_their_code(
    db: Database, clock: ManualClock, agent_id: str, spoil: str, code: Code
) -> None:
    issued = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE)
    with db.write() as tx:
        if spoil == "revoke":
            sessions.revoke(tx, issued.session.id, now=clock.now())
        elif spoil == "suspend":
            agents.suspend(tx, agent_id, now=clock.now())
    if spoil == "expire":
        clock.advance(NOW_RENEWABLE.expires_in)
    assert _refused(db, clock, issued.session.id, issued.token, NOW_RENEWABLE).code is code


def test_another_sessions_token_is_a_renewal_mismatch(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    mine = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE)
    theirs = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE)
    error = _refused(db, clock, mine.session.id, theirs.token, NOW_RENEWABLE)
    assert error.code is SessionCode.SESSION_RENEWAL_MISMATCH
    assert (
        _refused(db, clock, "no-such-session", mine.token, NOW_RENEWABLE).code
        is SessionCode.SESSION_NOT_FOUND
    )
    assert (
        _refused(db, clock, mine.session.id, "rf_sess_garbage", NOW_RENEWABLE).code
        is AuthCode.INVALID_TOKEN
    )


def test_previous_token_after_the_window_revokes_the_session_as_reuse(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE)
    current = _renew(db, clock, issued.session.id, issued.token, NOW_RENEWABLE).token
    clock.advance(CONFLICT_WINDOW_S)
    in_window = _refused(db, clock, issued.session.id, issued.token, NOW_RENEWABLE)
    assert in_window.code is SessionCode.RENEWAL_CONFLICT
    assert _row(db, issued.session.id)["revoked_at"] is None

    clock.advance(1)
    reused = _refused(db, clock, issued.session.id, issued.token, NOW_RENEWABLE)
    assert reused.code is SessionCode.TOKEN_REUSED
    row = _row(db, issued.session.id)
    assert (row["revoked_at"], row["revoke_reason"]) == (clock.now(), "token_reuse")
    [entry] = _events(db, "SESSION_TOKEN_REUSED")
    assert entry.severity is Severity.CRITICAL
    with pytest.raises(RacefreeError) as info:
        sessions.authenticate(db, current, now=clock.now(), policy=NOW_RENEWABLE)
    assert info.value.code is SessionCode.SESSION_REVOKED


def test_previous_token_presented_for_authentication_after_the_window_is_reuse(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE)
    _renew(db, clock, issued.session.id, issued.token, NOW_RENEWABLE)
    with pytest.raises(RacefreeError) as info:
        sessions.authenticate(db, issued.token, now=clock.now(), policy=NOW_RENEWABLE)
    assert info.value.code is AuthCode.INVALID_TOKEN
    clock.advance(CONFLICT_WINDOW_S + 1)

    outcomes = race(
        4, lambda i: sessions.authenticate(db, issued.token, now=clock.now(), policy=NOW_RENEWABLE)
    )

    assert tally(outcomes) == {"TOKEN_REUSED": 4}
    assert len(_events(db, "SESSION_TOKEN_REUSED")) == 1
    assert _row(db, issued.session.id)["revoke_reason"] == "token_reuse"


def test_within_the_grace_window_a_repeat_gets_the_same_successor(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id, GRACE)
    first = _renew(db, clock, issued.session.id, issued.token, GRACE)
    clock.advance(GRACE.grace_s)
    repeat = _renew(db, clock, issued.session.id, issued.token, GRACE)
    assert (repeat.token, repeat.replayed) == (first.token, True)
    assert repeat.session.renewal_count == 1
    assert len(_events(db, "SESSION_RENEWAL_REPLAYED")) == 1

    clock.advance(1)
    reused = _refused(db, clock, issued.session.id, issued.token, GRACE)
    assert reused.code is SessionCode.TOKEN_REUSED


def test_grace_successors_are_well_formed_and_differ_per_session(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    a = factory.issue_session(db, clock, agent_id, GRACE)
    b = factory.issue_session(db, clock, agent_id, GRACE)
    ta = _renew(db, clock, a.session.id, a.token, GRACE).token
    tb = _renew(db, clock, b.session.id, b.token, GRACE).token
    assert ta != tb
    assert tokens.well_formed(ta, SESSION_PREFIX)
    with db.read() as tx:
        assert (
            tx.scalar("SELECT COUNT(*) FROM system_settings WHERE key = 'session_grace_key'") == 1
        )


def test_successive_renewals_chain_and_count_in_sql(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id, NOW_RENEWABLE)
    token = issued.token
    for expected in (1, 2, 3):
        renewal = _renew(db, clock, issued.session.id, token, NOW_RENEWABLE)
        assert renewal.session.renewal_count == expected
        token = renewal.token
    assert (
        _refused(db, clock, issued.session.id, token, NOW_RENEWABLE).code
        is SessionCode.RENEWAL_LIMIT_REACHED
    )
