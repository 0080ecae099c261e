"""plans.spread: deterministic, balanced, and the parts sum exactly to the whole."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from racefree.plans.spread import Share, days_between, spread

START = date(2026, 1, 1)


def test_units_are_spread_evenly_with_the_remainder_on_the_first_days() -> None:
    shares = spread([("water", 10)], START, START + timedelta(days=3))
    assert [s.units for s in shares] == [3, 3, 2, 2]
    assert [s.day for s in shares] == [START + timedelta(days=i) for i in range(4)]


def test_days_without_units_are_left_out() -> None:
    assert spread([("rare", 2)], START, START + timedelta(days=4)) == [
        Share(START, "rare", 1),
        Share(START + timedelta(days=1), "rare", 1),
    ]


@given(
    items=st.lists(st.integers(min_value=1, max_value=100_000), min_size=1, max_size=8),
    days=st.integers(min_value=1, max_value=366),
)
def test_every_item_sums_exactly_and_days_differ_by_at_most_one(
    items: list[int], days: int
) -> None:
    end = START + timedelta(days=days - 1)
    named = [(f"item{i}", units) for i, units in enumerate(items)]
    shares = spread(named, START, end)
    assert shares == spread(named, START, end)  # deterministic
    per_item: dict[str, list[int]] = defaultdict(list)
    for share in shares:
        assert START <= share.day <= end
        per_item[share.item].append(share.units)
    for name, units in named:
        got = per_item[name]
        assert sum(got) == units
        assert max(got) - min(got) <= 1 or len(got) < days_between(START, end)
