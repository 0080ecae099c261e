"""plans generation: one generation at a time per group, fenced writes, exact sums."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import GeneralCode, LockCode, RacefreeError
from racefree.core.locks import LeaseLocks
from racefree.plans import Generator, Item, PlanGroup, create, get, lock_key, plans
from racefree.plans.errors import PlanCode
from racefree.testing import race, tally

TTL_S = 30.0
ITEMS = [Item("water", 100), Item("seeds", 7), Item("tools", 31)]


@pytest.fixture
def locks(db: Database, clock: ManualClock) -> LeaseLocks:
    return LeaseLocks(db, clock)


@pytest.fixture
def generator(db: Database, clock: ManualClock, locks: LeaseLocks) -> Generator:
    return Generator(db, clock, locks, ttl_s=TTL_S)


@pytest.fixture
def group(db: Database, clock: ManualClock) -> PlanGroup:
    with db.write() as tx:
        return create(
            tx,
            title="spring",
            start_date=date(2026, 3, 1),
            end_date=date(2026, 3, 10),
            items=ITEMS,
            now=clock.now(),
        )


def _plans(db: Database, group_id: str) -> list[tuple[int, str, int]]:
    with db.read() as tx:
        return [(p.generation, p.item, p.units) for p in plans(tx, group_id)]


def _assert_one_generation(db: Database, group_id: str, generation: int) -> None:
    rows = _plans(db, group_id)
    assert {g for g, _, _ in rows} == {generation}
    for item in ITEMS:
        assert sum(u for _, name, u in rows if name == item.name) == item.units


class TestGenerate:
    def test_generation_spreads_the_units_and_records_the_fencing_token(
        self, db: Database, generator: Generator, group: PlanGroup
    ) -> None:
        result = generator.generate(group.id, holder="op")
        assert (result.generation, result.fencing_token) == (1, 1)
        assert result.plans_created == len(_plans(db, group.id)) == 10 + 7 + 10
        _assert_one_generation(db, group.id, 1)
        with db.read() as tx:
            stored = get(tx, group.id)
        assert (stored.generation, stored.fencing_token) == (1, 1)
        assert generator.locks.current(lock_key(group.id)) is None  # released

    def test_regenerating_replaces_the_previous_plans(
        self, db: Database, generator: Generator, group: PlanGroup
    ) -> None:
        generator.generate(group.id, holder="op")
        second = generator.generate(group.id, holder="op")
        assert (second.generation, second.fencing_token) == (2, 2)
        _assert_one_generation(db, group.id, 2)

    def test_an_unknown_group_is_not_found_and_leaves_no_lock(self, generator: Generator) -> None:
        with pytest.raises(RacefreeError) as missing:
            generator.generate("no-such-group", holder="op")
        assert missing.value.code is PlanCode.PLAN_GROUP_NOT_FOUND
        assert generator.locks.held() == []

    def test_concurrent_generations_have_one_winner_and_no_duplicate_plans(
        self, db: Database, clock: ManualClock, locks: LeaseLocks, group: PlanGroup
    ) -> None:
        n = 8
        losers_done = threading.Event()
        lost = []

        def slow_service(_: float) -> None:  # the winner works until every loser was refused
            losers_done.wait(60)

        generator = Generator(db, clock, locks, ttl_s=TTL_S, delay_ms=1, sleep=slow_service)

        def attempt(i: int) -> object:
            try:
                return generator.generate(group.id, holder=f"h{i}")
            except RacefreeError:
                lost.append(i)
                if len(lost) == n - 1:
                    losers_done.set()
                raise

        outcomes = race(n, attempt)
        assert tally(outcomes) == {"won": 1, "PLAN_GENERATION_IN_PROGRESS": n - 1}
        for o in outcomes:
            if not o.won:
                assert isinstance(o.error, RacefreeError)
                assert o.error.retry_after is not None
                assert o.error.details["holder"].startswith("h")
        _assert_one_generation(db, group.id, 1)


class TestFencing:
    def test_a_holder_paused_past_its_ttl_writes_nothing_and_the_new_holders_plans_stand(
        self, db: Database, clock: ManualClock, generator: Generator, group: PlanGroup
    ) -> None:
        paused = generator.prepare(generator.lock(group.id, holder="paused"), group.id)
        clock.advance(TTL_S)  # the paused holder's lease runs out...
        fresh = generator.generate(group.id, holder="fresh")  # ...and is taken over
        with pytest.raises(RacefreeError) as lost:
            generator.write(paused)
        assert lost.value.code is LockCode.LOCK_LOST
        assert (fresh.generation, fresh.fencing_token) == (1, 2)
        _assert_one_generation(db, group.id, 1)
        with db.read() as tx:
            assert get(tx, group.id).fencing_token == 2

    def test_a_stale_holder_cannot_write_even_before_the_new_holder_writes(
        self, db: Database, clock: ManualClock, generator: Generator, group: PlanGroup
    ) -> None:
        stale = generator.prepare(generator.lock(group.id, holder="stale"), group.id)
        clock.advance(TTL_S)
        fresh = generator.prepare(generator.lock(group.id, holder="fresh"), group.id)
        with pytest.raises(RacefreeError) as lost:
            generator.write(stale)
        assert lost.value.code is LockCode.LOCK_LOST
        assert lost.value.details["current_holder"] == "fresh"
        assert _plans(db, group.id) == []
        assert generator.write(fresh).fencing_token == fresh.lease.token
        _assert_one_generation(db, group.id, 1)

    def test_an_expired_lease_nobody_took_still_cannot_write(
        self, db: Database, clock: ManualClock, generator: Generator, group: PlanGroup
    ) -> None:
        late = generator.prepare(generator.lock(group.id, holder="late"), group.id)
        clock.advance(TTL_S)
        with pytest.raises(RacefreeError) as lost:
            generator.write(late)
        assert lost.value.code is LockCode.LOCK_LOST
        assert _plans(db, group.id) == []


class TestWaiting:
    def test_a_long_enough_wait_generates_after_the_holder_finishes(
        self, generator: Generator, group: PlanGroup
    ) -> None:
        held = generator.lock(group.id, holder="first")
        timer = threading.Timer(0.1, generator.locks.release, args=(held,))
        timer.start()
        result = generator.generate(group.id, holder="second", wait_s=30)
        timer.join()
        assert result.generation == 1
        assert result.lock_wait_ms > 0

    def test_a_too_short_wait_is_lock_timeout(self, generator: Generator, group: PlanGroup) -> None:
        generator.lock(group.id, holder="first")
        with pytest.raises(RacefreeError) as timeout:
            generator.generate(group.id, holder="second", wait_s=0.05)
        assert timeout.value.code is LockCode.LOCK_TIMEOUT


class TestCreate:
    @pytest.mark.parametrize(
        ("start", "end", "items", "message"),
        [
            (date(2026, 3, 2), date(2026, 3, 1), ITEMS, "end_date must not be before"),
            (date(2026, 1, 1), date(2027, 1, 2), ITEMS, "at most 366 days"),
            (date(2026, 1, 1), date(2026, 1, 2), [Item("a", 1), Item("a", 2)], "unique"),
            (date(2026, 1, 1), date(2026, 1, 2), [Item("a", 0)], "units must be"),
            (date(2026, 1, 1), date(2026, 1, 2), [], "between 1 and 100 items"),
        ],
    )
    def test_invalid_groups_are_refused(
        self,
        db: Database,
        clock: ManualClock,
        start: date,
        end: date,
        items: list[Item],
        message: str,
    ) -> None:
        with pytest.raises(RacefreeError, match=message) as invalid, db.write() as tx:
            create(tx, title="t", start_date=start, end_date=end, items=items, now=clock.now())
        assert invalid.value.code is GeneralCode.VALIDATION_ERROR
