"""``racefree_outbox_lag_events``: committed events not yet delivered, read at scrape time.

The figure (docs/events.md, docs/operations.md): for the ACTIVE webhook furthest
behind, the committed events of the types it wants after its cursor. It rises
with every committed event a webhook wants, ignores uncommitted ones and other
types, stays up while a receiver fails, and falls to 0 when the deliverer has
had every event accepted.
"""

from __future__ import annotations

import math

from fastapi.testclient import TestClient

from racefree.core.db import Database
from racefree.events import outbox, webhooks
from racefree.settings import Settings
from tests.events.hooks import deliverer, make_webhook, run_until
from tests.events.receiver import Receiver, always
from tests.events.support import held_open, record

METRIC = "racefree_outbox_lag_events"


def lag(client: TestClient) -> float:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    values = [
        float(line.split()[1]) for line in answer.text.splitlines() if line.startswith(METRIC + " ")
    ]
    assert len(values) == 1, answer.text
    return values[0]


def test_lag_counts_committed_events_a_webhook_wants_until_they_are_delivered(
    engine: str, db: Database, settings: Settings, client: TestClient
) -> None:
    assert lag(client) == 0  # no webhook, nothing to deliver
    with Receiver() as receiver:
        make_webhook(db, settings, receiver.url, ["LAG_WANTED"])
        assert lag(client) == 0  # a new webhook starts at the outbox head
        for _ in range(5):
            record(db, "LAG_WANTED")
        record(db, "LAG_OTHER")  # not a type it wants: never delivered, never lag
        assert lag(client) == 5
        with held_open(db, "LAG_WANTED"):
            assert lag(client) == 5  # not committed yet: not an event
            if engine == "postgresql":
                # committed, but held above the head by the older open transaction:
                # not deliverable yet, and lag all the same
                record(db, "LAG_WANTED")
                assert lag(client) == 6
        committed = 7 if engine == "postgresql" else 6
        assert lag(client) == committed
        d = deliverer(db, settings)
        run_until(d, lambda: lag(client) == 0)
        assert len(receiver.succeeded()) == committed


def test_lag_stays_while_a_receiver_fails_and_a_disabled_webhook_is_not_counted(
    db: Database, settings: Settings, client: TestClient
) -> None:
    with Receiver(always(500)) as receiver:
        hook, _ = make_webhook(db, settings, receiver.url, ["*"])
        for _ in range(3):
            record(db, "LAG_WANTED")
        behind = lag(client)
        assert behind >= 3  # the three, and WEBHOOK_CREATED if it committed after the head
        d = deliverer(db, settings)
        run_until(d, lambda: len(receiver.requests) >= 1)
        assert lag(client) == behind  # refused: nothing delivered, nothing less behind
        with db.write() as tx:
            webhooks.update(tx, hook.id, now=1, actor="test", status=webhooks.DISABLED)
        assert lag(client) == 0  # nothing is delivered to it until it is enabled again
        with db.write() as tx:
            webhooks.update(tx, hook.id, now=1, actor="test", status=webhooks.ACTIVE)
        assert lag(client) > behind  # it is behind again, by its events and its own changes


def test_metrics_still_answer_when_the_lag_cannot_be_read(db: Database, client: TestClient) -> None:
    with db.write() as tx:  # the query fails for real: its table is gone
        tx.execute("ALTER TABLE webhooks RENAME TO webhooks_elsewhere")
    assert math.isnan(lag(client))
    assert "racefree_http_requests_total" in client.get("/metrics").text


def test_the_count_is_bounded(db: Database) -> None:
    """``/metrics`` needs no token: a scrape counts at most ``LAG_CAP`` rows per webhook."""
    start = outbox.START  # a new database: no event yet
    for _ in range(5):
        record(db, "LAG_WANTED")
    with db.read() as tx:
        assert outbox.count_after(tx, start) == 5
        assert outbox.count_after(tx, start, cap=3) == 3
        assert outbox.count_after(tx, start, types=["LAG_OTHER"]) == 0
        assert outbox.count_after(tx, start, types=[]) == 0
    assert webhooks.LAG_CAP == 100_000
