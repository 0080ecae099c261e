"""A refused admission whose explanation is gone is retried, never a 500 (issue 9, 13).

On PostgreSQL (READ COMMITTED) a reservation refused by the session's
``max_total_amount`` can be followed -- before the SELECT that explains the
refusal -- by a release that commits on another connection; the explanation
then finds no failing limit. The admission is retried once, and admits.
SQLite has one writer, so no release can commit in between: there the
refusal stands, explained.
"""

from __future__ import annotations

from racefree.core.clock import ManualClock
from racefree.core.db import Database, Row
from racefree.core.errors import RacefreeError
from racefree.sessions.errors import SessionCode
from racefree.settings import Settings
from racefree.transactions.service import Transactions
from tests import factory
from tests.faults.support import Background
from tests.faults.support import faulty as make_faulty
from tests.transactions.conftest import session_row, transfer

LIMIT = 60_000


def test_a_release_committing_between_refusal_and_explanation_is_admitted_on_retry(
    db: Database, clock: ManualClock, settings: Settings, agent: str, sleeps: list[float]
) -> None:
    session = factory.session(db, agent, now=clock.now(), constraints={"max_total_amount": LIMIT})
    plain = Transactions(db, clock, settings, sleep=sleeps.append)
    queued = str(plain.submit(session, transfer(LIMIT)).reply.body["transaction_id"])
    released: list[bool] = []

    def release_meanwhile(sql: str, row: Row | None) -> None:
        refused = sql.startswith("UPDATE sessions SET reserved = reserved +") and row is None
        if refused and not released and db.dialect != "sqlite":
            Background(lambda: plain.reject(queued, actor="test")).outcome()
            released.append(True)

    faulty = make_faulty(db, after_statement=release_meanwhile)
    service = Transactions(faulty, clock, settings, sleep=sleeps.append)
    if db.dialect == "sqlite":
        try:
            service.submit(session, transfer(500))
        except RacefreeError as refusal:
            assert refusal.code is SessionCode.SESSION_LIMIT_EXCEEDED
            return
        raise AssertionError("admitted past the session's limit")
    outcome = service.submit(session, transfer(500))  # today: RuntimeError -> 500
    assert released
    assert outcome.reply.body["status"] == "CONFIRMED"
    assert session_row(db, session) == {"spent": 500, "reserved": 0, "tx_count": 2}
