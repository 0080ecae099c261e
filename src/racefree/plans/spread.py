"""Spreading units over days: deterministic, and the parts always sum to the whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Share:
    day: date
    item: str
    units: int


def days_between(start: date, end: date) -> int:
    """Days in the inclusive period ``start..end``."""
    return (end - start).days + 1


def spread(items: Iterable[tuple[str, int]], start: date, end: date) -> list[Share]:
    """Each item's units over the days ``start..end``: ``units // days`` a day, and the
    remainder one extra unit a day from the first day on. Days with no units are left out."""
    return [share for name, units in items for share in _one(name, units, start, end)]


def _one(name: str, units: int, start: date, end: date) -> Iterator[Share]:
    days = days_between(start, end)
    base, extra = divmod(units, days)
    for offset in range(days):
        today = base + (1 if offset < extra else 0)
        if today:
            yield Share(start + timedelta(days=offset), name, today)
