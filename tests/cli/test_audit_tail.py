"""``audit tail`` in remote mode finds the newest entries of a log larger than a page."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from racefree.cli import audit
from racefree.client import models


class FakeAudit:
    """``client.audit.list`` over an in-memory log: ids ascending, with gaps, paged by id."""

    def __init__(self, ids: list[int], types: list[str]) -> None:
        self.log = [_entry(i, t) for i, t in zip(ids, types, strict=True)]
        self.calls = 0

    def list(
        self, *, after_id: int = 0, limit: int = 100, event_type: str | None = None
    ) -> models.AuditPage:
        self.calls += 1
        found = [e for e in self.log if e.id > after_id and event_type in (None, e.event_type)][
            :limit
        ]
        return models.AuditPage(entries=found, next_after_id=found[-1].id if found else after_id)


def _entry(entry_id: int, event_type: str) -> models.AuditEntry:
    fields: dict[str, Any] = {
        "id": entry_id,
        "at": f"2026-11-30T00:00:{entry_id % 60:02d}.000Z",
        "at_epoch": entry_id,
        "event_type": event_type,
        "severity": "info",
        "actor": None,
        "agent_id": None,
        "session_id": None,
        "transaction_id": None,
        "details": {},
        "request_id": None,
    }
    return models.AuditEntry(**fields)


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 2500, 7000])
@pytest.mark.parametrize("event_type", [None, "RARE", "COMMON"])
def test_tail_finds_the_newest_matching_entries(size: int, event_type: str | None) -> None:
    rng = random.Random(size)
    ids = sorted(rng.sample(range(1, size * 3 + 2), size))  # gaps, as sequences leave them
    types = ["RARE" if rng.random() < 0.01 else "COMMON" for _ in ids]
    fake = FakeAudit(ids, types)
    client: Any = SimpleNamespace(audit=fake)
    for limit in (1, 20, 1000):
        expected = [e for e in fake.log if event_type in (None, e.event_type)][-limit:]
        assert audit.newest(client, limit, event_type) == expected
    assert fake.calls < 3 * 200  # a few binary searches and windows, never a walk per entry
