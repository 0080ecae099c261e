"""sessions.authenticate: one indexed lookup; every way a token fails has its own code."""

from __future__ import annotations

import pytest

from racefree import agents, sessions
from racefree.agents.errors import AgentCode
from racefree.core import tokens
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import Code, RacefreeError
from racefree.operators.errors import AuthCode
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import SESSION_PREFIX
from tests import factory
from tests.factory import POLICY


def _auth(db: Database, clock: ManualClock, token: str) -> sessions.Authenticated:
    return sessions.authenticate(db, token, now=clock.now(), policy=POLICY)


def _code(db: Database, clock: ManualClock, token: str) -> Code:
    with pytest.raises(RacefreeError) as info:
        _auth(db, clock, token)
    return info.value.code


def test_a_valid_token_authenticates_its_session(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    who = _auth(db, clock, issued.token)
    assert (who.session_id, who.agent_id) == (issued.session.id, agent_id)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.replace("rf_sess_", "rf_op_"),
        lambda t: t[:20] + "!" + t[21:],
        lambda t: "",
    ],
    ids=["truncated", "checksum", "operator-prefix", "bad-alphabet", "empty"],
)
def test_malformed_tokens_are_refused_before_any_database_work(clock: ManualClock, mangle) -> None:
    class NoDatabase:
        def read(self) -> None:
            raise AssertionError("a malformed token reached the database")

        write = read

    token = mangle(tokens.mint(SESSION_PREFIX))
    with pytest.raises(RacefreeError) as info:
        sessions.authenticate(NoDatabase(), token, now=clock.now(), policy=POLICY)  # type: ignore[arg-type]
    assert info.value.code is AuthCode.INVALID_TOKEN


def test_an_unknown_well_formed_token_is_invalid(db: Database, clock: ManualClock) -> None:
    assert _code(db, clock, tokens.mint(SESSION_PREFIX)) is AuthCode.INVALID_TOKEN


def test_expiry_is_exact_to_the_second(db: Database, clock: ManualClock, agent_id: str) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    clock.advance(POLICY.expires_in - 1)
    assert _auth(db, clock, issued.token).session_id == issued.session.id
    clock.advance(1)
    assert _code(db, clock, issued.token) is SessionCode.TOKEN_EXPIRED


def test_a_revoked_session_is_session_revoked(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    with db.write() as tx:
        sessions.revoke(tx, issued.session.id, now=clock.now())
    assert _code(db, clock, issued.token) is SessionCode.SESSION_REVOKED


def test_a_suspended_agents_session_does_not_authenticate_until_reactivated(
    db: Database, clock: ManualClock, agent_id: str
) -> None:
    issued = factory.issue_session(db, clock, agent_id)
    with db.write() as tx:
        agents.suspend(tx, agent_id, now=clock.now())
    assert _code(db, clock, issued.token) is AgentCode.AGENT_SUSPENDED
    with db.write() as tx:
        agents.activate(tx, agent_id, now=clock.now())
    assert _auth(db, clock, issued.token).agent_id == agent_id
