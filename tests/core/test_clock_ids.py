"""core.clock and core.ids: time is injected, ids sort by creation."""

from __future__ import annotations

from racefree.core.clock import ManualClock, SystemClock, isoformat
from racefree.core.ids import new_id


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=1000)
    assert clock.now() == 1000
    clock.advance(1.5)
    assert (clock.now(), clock.now_ms()) == (1001, 1_001_500)
    clock.set(5)
    assert clock.now() == 5


def test_system_clock_agrees_with_itself() -> None:
    clock = SystemClock()
    assert abs(clock.now() - clock.now_ms() // 1000) <= 1


def test_isoformat_is_rfc3339_utc_with_milliseconds() -> None:
    assert isoformat(0) == "1970-01-01T00:00:00.000Z"
    assert isoformat(1_796_000_000) == "2026-11-30T00:53:20.000Z"
    assert isoformat(None) is None


def test_ids_are_uuid7_and_sort_by_creation() -> None:
    ids = [new_id() for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    assert all(i[14] == "7" for i in ids)
