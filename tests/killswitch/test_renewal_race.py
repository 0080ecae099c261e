"""A session renewal racing an activation never leaves an active session behind.

Renewal is written in the shape DESIGN sections 4/5 fix for ``racefree.sessions``
(optimistic lock on the current token hash, refused once revoked); the kill
switch's revoke is one set-based UPDATE. Whichever commits first, the other
sees it: on SQLite the writes are serialized; on PostgreSQL (READ COMMITTED)
the later UPDATE waits on the row lock and re-checks its WHERE on the new row.
"""

from __future__ import annotations

import pytest

from racefree import killswitch
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import ErrorCode, RacefreeError
from tests.killswitch import seed
from tests.support import race, tally

ROUNDS = 20
RENEWERS = 6

RENEW = (
    "UPDATE sessions SET token_hash = :new, previous_token_hash = :current,"
    " expires_at = :now + expires_in, renewal_count = renewal_count + 1,"
    " last_renewed_at = :now"
    " WHERE id = :id AND token_hash = :current AND revoked_at IS NULL"
)


def _renew(db: Database, session_id: str, now: int, round_no: int) -> str:
    current = f"h-{session_id}"
    new = f"h-{session_id}-r{round_no}"
    with db.write() as tx:
        if tx.execute(RENEW, {"new": new, "current": current, "id": session_id, "now": now}) != 1:
            raise RacefreeError(ErrorCode.SESSION_REVOKED)
    return new


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_a_renewal_racing_an_activation_never_leaves_an_active_session(
    db: Database, clock: ManualClock, round_no: int
) -> None:
    with db.write() as tx:
        agent = seed.agent(tx, now=clock.now())
        sessions = [seed.session(tx, agent, now=clock.now()) for _ in range(RENEWERS)]

    def attempt(i: int) -> object:
        if i == RENEWERS:
            return killswitch.activate_now(db, "race", now=clock.now())
        return _renew(db, sessions[i], clock.now(), round_no)

    outcomes = race(RENEWERS + 1, attempt)
    assert outcomes[RENEWERS].won
    counts = tally(outcomes[:RENEWERS])
    assert counts["won"] + counts["SESSION_REVOKED"] == RENEWERS
    with db.read() as tx:
        rows = tx.all("SELECT token_hash, revoked_at, revoke_reason, renewal_count FROM sessions")
    assert all(r["revoked_at"] == clock.now() for r in rows)
    assert all(r["revoke_reason"] == "kill_switch" for r in rows)
    # a renewal either committed before the revoke (and was revoked with it) or not at all
    assert sum(r["renewal_count"] for r in rows) == counts["won"]
