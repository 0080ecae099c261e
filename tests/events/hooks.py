"""Creating webhooks and running deliverers in the tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from racefree.core.clock import SystemClock
from racefree.core.db import Database
from racefree.events import secrets, webhooks
from racefree.events.delivery import Deliverer
from racefree.events.webhooks import Webhook
from racefree.settings import Settings


def make_webhook(
    db: Database, settings: Settings, url: str, types: list[str] | None = None
) -> tuple[Webhook, str]:
    with db.write() as tx:
        box = secrets.box(tx, settings, now=int(time.time()))
        return webhooks.create(
            tx, box, url=url, event_types=types or ["*"], now=int(time.time()), actor="test"
        )


def deliverer(db: Database, settings: Settings, holder: str = "test") -> Deliverer:
    # the real clock: receivers check webhook-timestamp against theirs
    return Deliverer(db, SystemClock(), settings, holder=holder)


def webhook(db: Database, webhook_id: str) -> Webhook:
    with db.read() as tx:
        return webhooks.get(tx, webhook_id)


def run_until(d: Deliverer, done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("deliveries did not finish in time")
        d.run_once()
        time.sleep(0.02)
