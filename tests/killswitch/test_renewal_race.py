"""A session renewal racing an activation never leaves an active session behind.

The renewal is the real one (``racefree.sessions.renew``: one guarded UPDATE
``WHERE id = :id AND token_hash = :current AND revoked_at IS NULL ...``); the
kill switch's revoke is one set-based UPDATE. Whichever commits first, the other
sees it: on SQLite the writes are serialized; on PostgreSQL (READ COMMITTED)
the later UPDATE waits on the row lock and re-checks its WHERE on the new row.
"""

from __future__ import annotations

import pytest

from racefree import killswitch, sessions
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.testing import race, tally
from tests import factory

ROUNDS = 20
RENEWERS = 6
#: Renewable at once, so every renewer is a real contender.
POLICY = sessions.Policy(min_elapsed=0.0)


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_a_renewal_racing_an_activation_never_leaves_an_active_session(
    db: Database, clock: ManualClock, round_no: int
) -> None:
    with db.write() as tx:
        agent = factory.agent(tx, now=clock.now())
        issued = [
            sessions.issue(tx, agent, now=clock.now(), policy=POLICY) for _ in range(RENEWERS)
        ]

    def attempt(i: int) -> object:
        if i == RENEWERS:
            return killswitch.activate_now(db, f"race {round_no}", now=clock.now())
        return sessions.renew(
            db, issued[i].session.id, issued[i].token, now=clock.now(), policy=POLICY
        )

    outcomes = race(RENEWERS + 1, attempt)
    assert outcomes[RENEWERS].won
    counts = tally(outcomes[:RENEWERS])
    assert counts["won"] + counts["SESSION_REVOKED"] == RENEWERS, counts
    with db.read() as tx:
        rows = tx.all("SELECT revoked_at, revoke_reason, renewal_count FROM sessions")
    assert len(rows) == RENEWERS
    assert all(r["revoked_at"] == clock.now() for r in rows)
    assert all(r["revoke_reason"] == "kill_switch" for r in rows)
    # a renewal either committed before the revoke (and was revoked with it) or not at all
    assert sum(r["renewal_count"] for r in rows) == counts["won"]
