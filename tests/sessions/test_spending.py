"""The session's spending counters: written by the sessions domain only, exact under races.

The transactions domain ends transactions; :mod:`racefree.sessions.spending`
gives their amounts back or moves them to ``spent``, and locks the session rows
in the documented order. The race below runs the kill switch's set-based
cancellation against operators rejecting and executors confirming transactions
of the same sessions, on a barrier: no racer deadlocks, each reservation is
settled exactly once, and the counters end exact.
"""

from __future__ import annotations

import re
from pathlib import Path

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.testing import race
from racefree.transactions import approvals, cancellation, moves
from tests import factory

SRC = Path(__file__).resolve().parents[2] / "src" / "racefree"
SESSIONS = 3
QUEUED = (10, 20, 30)
SUBMITTED = 7


def test_only_the_sessions_domain_writes_session_rows() -> None:
    """Another domain's SQL on ``sessions`` would be a second home for its bookkeeping."""
    writes = re.compile(r"UPDATE\s+sessions\b")
    writers = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] != "sessions" and writes.search(path.read_text())
    }
    assert writers == set()


def test_a_cancellation_racing_rejections_and_confirmations_settles_each_amount_once(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    queued: list[str] = []
    submitted: list[str] = []
    with db.write() as tx:
        agent = factory.agent(tx, now=now)
        session_ids = [
            factory.session(tx, agent, reserved=sum(QUEUED) + SUBMITTED, now=now)
            for _ in range(SESSIONS)
        ]
        for s in session_ids:
            queued += [
                factory.transaction(tx, agent, s, status="QUEUED", amount=a, now=now)
                for a in QUEUED
            ]
            submitted.append(
                factory.transaction(tx, agent, s, status="SUBMITTED", amount=SUBMITTED, now=now)
            )
    # movers take the sessions in the opposite order to the cancellation's id order
    rejected = sorted(queued, reverse=True)
    confirmed = sorted(submitted, reverse=True)

    def attempt(i: int) -> int:
        with db.write() as tx:
            if i == 0:
                return cancellation.cancel_for_agent(tx, agent, now=now, actor="operator:test")
            if i <= len(rejected):
                approvals.reject(tx, rejected[i - 1], now=now, actor="operator:test")
                return 1
            txn = approvals.load(tx, confirmed[i - 1 - len(rejected)])
            moves.confirm(tx, txn, now=now, reference=None)
            return 1

    outcomes = race(1 + len(rejected) + len(confirmed), attempt)

    errors = [o.error for o in outcomes if o.error is not None]
    assert all(isinstance(e, RacefreeError) for e in errors), errors
    lost = [e.code.value for e in errors if isinstance(e, RacefreeError)]
    assert set(lost) <= {"TX_ALREADY_PROCESSED"}, lost  # a rejection that came too late
    cancelled_by_switch = outcomes[0].value
    rejections = sum(1 for o in outcomes[1 : 1 + len(rejected)] if o.error is None)
    assert cancelled_by_switch + rejections == len(queued)  # each ended by exactly one move
    assert all(o.error is None for o in outcomes[1 + len(rejected) :])  # confirmations all win
    with db.read() as tx:
        counters = tx.all(
            "SELECT reserved, spent FROM sessions WHERE agent_id = :a ORDER BY id", {"a": agent}
        )
        statuses = tx.all(
            "SELECT status, COUNT(*) AS n FROM transactions GROUP BY status ORDER BY status"
        )
    assert counters == [{"reserved": 0, "spent": SUBMITTED}] * SESSIONS
    assert statuses == [
        {"status": "CANCELLED", "n": len(queued)},
        {"status": "CONFIRMED", "n": len(submitted)},
    ]
