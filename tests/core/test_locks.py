"""core.locks lease backend: exclusive, fenced, expiring, observable -- on both engines."""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time

import pytest
from prometheus_client import REGISTRY

from racefree.core.clock import ManualClock
from racefree.core.db import Database, Dialect
from racefree.core.errors import LockCode, RacefreeError
from racefree.core.locks import (
    AdvisoryLocks,
    AdvisoryUnavailable,
    Heartbeat,
    Lease,
    LeaseLocks,
    LockBusy,
    advisory_key,
    fence,
)
from racefree.testing import race, tally, wait_until_blocked

TTL_S = 10.0


@pytest.fixture
def locks(db: Database, clock: ManualClock) -> LeaseLocks:
    return LeaseLocks(db, clock)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestAcquire:
    def test_first_acquisition_gets_token_one_and_a_ttl_from_the_injected_clock(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        lease = locks.acquire("k:a", holder="alice", ttl_s=TTL_S)
        assert lease == Lease("k:a", "alice", 1, clock.now_ms(), clock.now_ms() + 10_000)

    def test_a_held_lock_refuses_with_lock_busy_naming_the_holder(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        held = locks.acquire("k:a", holder="alice", ttl_s=TTL_S)
        clock.advance(2.5)
        with pytest.raises(LockBusy) as busy:
            locks.acquire("k:a", holder="bob", ttl_s=TTL_S)
        assert (busy.value.key, busy.value.holder) == ("k:a", "alice")
        assert busy.value.acquired_at_ms == held.acquired_at_ms
        assert busy.value.expires_at_ms == held.expires_at_ms
        assert busy.value.retry_after == 8  # ceil(7.5 s left)

    def test_keys_are_independent(self, locks: LeaseLocks) -> None:
        a = locks.acquire("k:a", holder="alice", ttl_s=TTL_S)
        b = locks.acquire("k:b", holder="bob", ttl_s=TTL_S)
        assert (a.token, b.token) == (1, 1)

    def test_concurrent_acquirers_have_exactly_one_winner(self, locks: LeaseLocks) -> None:
        outcomes = race(8, lambda i: locks.acquire("k:race", holder=f"h{i}", ttl_s=TTL_S))
        # LockBusy is a RacefreeError: LOCK_TIMEOUT with a wait of 0
        assert tally(outcomes) == {"won": 1, "LOCK_TIMEOUT": 7}
        assert all(isinstance(o.error, LockBusy) for o in outcomes if not o.won)
        winner = next(o.value for o in outcomes if o.won)
        assert locks.current("k:race") == winner


class TestReleaseAndTakeover:
    def test_release_frees_the_lock_and_the_next_token_is_greater(self, locks: LeaseLocks) -> None:
        first = locks.acquire("k:a", holder="alice", ttl_s=TTL_S)
        assert locks.release(first) is True
        second = locks.acquire("k:a", holder="bob", ttl_s=TTL_S)
        assert second.token > first.token
        assert locks.release(first) is False  # a stale lease releases nothing
        assert locks.current("k:a") == second

    def test_an_expired_lease_is_taken_over_and_its_holder_is_told_at_renewal(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        stale = locks.acquire("k:a", holder="alice", ttl_s=TTL_S)
        clock.advance(TTL_S)
        fresh = locks.acquire("k:a", holder="bob", ttl_s=TTL_S)
        assert fresh.token > stale.token
        with pytest.raises(RacefreeError) as lost:
            locks.renew(stale)
        assert lost.value.code is LockCode.LOCK_LOST
        assert lost.value.details["current_holder"] == "bob"
        assert locks.release(stale) is False
        assert locks.current("k:a") == fresh

    def test_renewal_extends_the_lease_by_its_ttl_and_keeps_the_token(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        lease = locks.acquire("k:a", holder="alice", ttl_s=TTL_S)
        clock.advance(6)
        renewed = locks.renew(lease)
        assert (renewed.token, renewed.acquired_at_ms) == (lease.token, lease.acquired_at_ms)
        assert renewed.expires_at_ms == clock.now_ms() + 10_000
        clock.advance(6)  # past the first expiry, within the renewed one
        with pytest.raises(LockBusy):
            locks.acquire("k:a", holder="bob", ttl_s=TTL_S)

    def test_an_expired_lease_nobody_took_can_still_be_renewed(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        lease = locks.acquire("k:a", holder="alice", ttl_s=TTL_S)
        clock.advance(TTL_S + 1)
        assert locks.renew(lease).token == lease.token

    def test_context_manager_releases_on_error(self, locks: LeaseLocks) -> None:
        with pytest.raises(ZeroDivisionError), locks.lock("k:a", holder="a", ttl_s=TTL_S):
            1 / 0  # noqa: B018
        assert locks.current("k:a") is None


class TestFencingTokens:
    def test_tokens_strictly_increase_across_1000_contended_acquisitions(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        """4 threads contend for one key; every 10th holder abandons its lease (as if it
        crashed) and a later acquirer takes it over once the clock passes the TTL.

        Property: every acquisition's token is greater than the token of every acquisition
        that completed before it started (a global sequence orders start and end events).
        """
        total, records = 1000, []
        sequence = itertools.count()

        def worker(i: int) -> int:
            mine = 0
            while len(records) < total:
                started = next(sequence)
                try:
                    lease = locks.acquire("k:hot", holder=f"w{i}", ttl_s=1.0, wait_s=30)
                except RacefreeError:
                    continue
                records.append((started, next(sequence), lease.token))
                mine += 1
                if lease.token % 10 == 0:
                    clock.advance(1.0)  # abandoned: expires, a later acquirer takes over
                else:
                    locks.release(lease)
            return mine

        outcomes = race(4, worker, timeout=240)
        assert all(o.won for o in outcomes), [o.error for o in outcomes if not o.won]
        assert len(records) >= total
        tokens = [token for _, _, token in records]
        assert len(set(tokens)) == len(tokens)
        by_end = sorted(records, key=lambda r: r[1])
        ends = [end for _, end, _ in by_end]
        highest_so_far = list(itertools.accumulate((t for _, _, t in by_end), max))
        for started, _, token in records:
            completed_before = bisect.bisect_left(ends, started)
            if completed_before:
                assert token > highest_so_far[completed_before - 1]
        assert (locks.last_token("k:hot") or 0) >= max(tokens)


class TestFence:
    def test_a_fenced_write_matches_only_for_the_current_unexpired_lease(
        self, db: Database, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        stale = locks.acquire("k:f", holder="alice", ttl_s=TTL_S)
        clock.advance(TTL_S)
        with db.write() as tx:  # expired, not yet taken over: no write
            where = fence(stale, clock.now_ms(), db.dialect)
            assert (
                tx.scalar(f"SELECT COUNT(*) AS n FROM lock_tokens WHERE {where.sql}", where.params)
                == 0
            )
            with pytest.raises(RacefreeError) as lost:
                locks.check(tx, stale, clock.now_ms())
            assert lost.value.code is LockCode.LOCK_LOST
        fresh = locks.acquire("k:f", holder="bob", ttl_s=TTL_S)
        with db.write() as tx:
            where = fence(fresh, clock.now_ms(), db.dialect)
            assert (
                tx.scalar(f"SELECT COUNT(*) AS n FROM lock_tokens WHERE {where.sql}", where.params)
                == 1
            )
            where = fence(stale, clock.now_ms(), db.dialect)
            assert (
                tx.scalar(f"SELECT COUNT(*) AS n FROM lock_tokens WHERE {where.sql}", where.params)
                == 0
            )
            locks.check(tx, fresh, clock.now_ms())

    @pytest.mark.parametrize("engine", ["postgresql"])  # SQLite: one writer, no interleaving
    def test_a_takeover_waits_for_a_fenced_write_in_flight(
        self, db: Database, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        held = locks.acquire("k:w", holder="alice", ttl_s=TTL_S)
        taken: list[Lease] = []
        thief = threading.Thread(
            target=lambda: taken.append(locks.acquire("k:w", holder="bob", ttl_s=TTL_S))
        )
        with db.write() as tx:
            where = fence(held, clock.now_ms(), db.dialect)
            assert (
                tx.scalar(f"SELECT COUNT(*) AS n FROM lock_tokens WHERE {where.sql}", where.params)
                == 1
            )
            clock.advance(TTL_S)  # alice's lease runs out while her fenced write is open
            thief.start()
            wait_until_blocked(db)  # bob's takeover waits for alice's write to commit
            assert taken == []
        thief.join(timeout=30)
        assert taken[0].holder == "bob" and taken[0].token > held.token


class TestWaiting:
    def test_a_long_enough_wait_gets_the_lock_when_the_holder_releases(
        self, locks: LeaseLocks
    ) -> None:
        held = locks.acquire("k:w", holder="alice", ttl_s=TTL_S)
        releaser = threading.Timer(0.1, locks.release, args=(held,))
        releaser.start()
        lease = locks.acquire("k:w", holder="bob", ttl_s=TTL_S, wait_s=30)
        releaser.join()
        assert lease.holder == "bob"
        assert lease.token > held.token

    def test_a_too_short_wait_times_out_with_lock_timeout(self, locks: LeaseLocks) -> None:
        locks.acquire("k:w", holder="alice", ttl_s=TTL_S)
        with pytest.raises(RacefreeError) as timeout:
            locks.acquire("k:w", holder="bob", ttl_s=TTL_S, wait_s=0.05)
        assert timeout.value.code is LockCode.LOCK_TIMEOUT
        assert timeout.value.retryable
        assert timeout.value.details["holder"] == "alice"
        assert timeout.value.retry_after == 10


class TestHeartbeat:
    def test_heartbeat_keeps_renewing_while_the_block_runs(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        lease = locks.acquire("k:h", holder="alice", ttl_s=1.0)
        with Heartbeat(locks, lease, every_s=0.005) as beat:
            clock.advance(5)
            deadline = time.monotonic() + 10
            while beat.lease.expires_at_ms <= clock.now_ms() and time.monotonic() < deadline:
                time.sleep(0.005)
        assert beat.lost is None
        assert beat.lease.expires_at_ms > clock.now_ms()
        with pytest.raises(LockBusy):
            locks.acquire("k:h", holder="bob", ttl_s=1.0)

    def test_heartbeat_reports_a_taken_over_lease_as_lost(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        lease = locks.acquire("k:h", holder="alice", ttl_s=1.0)
        clock.advance(1)
        locks.acquire("k:h", holder="bob", ttl_s=1.0)
        with Heartbeat(locks, lease, every_s=0.005) as beat:
            deadline = time.monotonic() + 10
            while beat.lost is None and time.monotonic() < deadline:
                time.sleep(0.005)
        assert beat.lost is not None
        assert beat.lost.code is LockCode.LOCK_LOST


class TestIntrospection:
    def test_held_lists_unexpired_leases_by_key_prefix(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        a = locks.acquire("plan-group:1", holder="a", ttl_s=TTL_S)
        b = locks.acquire("plan-group:2", holder="b", ttl_s=TTL_S)
        other = locks.acquire("tx:1", holder="c", ttl_s=1.0)
        assert locks.held() == [a, b, other]
        assert locks.held("plan-group:") == [a, b]
        clock.advance(1)
        assert locks.held() == [a, b]


class TestObservability:
    def test_every_acquisition_logs_one_line_with_key_outcome_and_wait(
        self, locks: LeaseLocks, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="racefree.locks"):
            locks.acquire("obs:a", holder="alice", ttl_s=TTL_S)
            with pytest.raises(LockBusy):
                locks.acquire("obs:a", holder="bob", ttl_s=TTL_S)
            with pytest.raises(RacefreeError):
                locks.acquire("obs:a", holder="carol", ttl_s=TTL_S, wait_s=0.02)
        lines = [r for r in caplog.records if r.name == "racefree.locks"]
        assert [r.lock_outcome for r in lines] == ["acquired", "busy", "timeout"]  # type: ignore[attr-defined]
        for record in lines:
            text = record.getMessage()
            assert "key=obs:a" in text
            assert "backend=lease" in text
            assert "wait_ms=" in text
        assert lines[2].lock_wait_ms >= 20  # type: ignore[attr-defined]

    def test_metrics_count_outcomes_and_time_waits_and_holds(
        self, locks: LeaseLocks, clock: ManualClock
    ) -> None:
        labels = {"backend": "lease", "scope": "metric"}
        before = {
            name: _metric(name, **labels)
            for name in (
                "racefree_lock_acquired_total",
                "racefree_lock_busy_total",
                "racefree_lock_timeout_total",
                "racefree_lock_lost_total",
                "racefree_lock_hold_seconds_count",
                "racefree_lock_hold_seconds_sum",
            )
        }
        wait_before = _metric("racefree_lock_wait_seconds_count", **labels, outcome="acquired")
        lease = locks.acquire("metric:a", holder="a", ttl_s=TTL_S)
        with pytest.raises(LockBusy):
            locks.acquire("metric:a", holder="b", ttl_s=TTL_S)
        with pytest.raises(RacefreeError):
            locks.acquire("metric:a", holder="b", ttl_s=TTL_S, wait_s=0.01)
        clock.advance(3)
        locks.release(lease)
        stale = locks.acquire("metric:a", holder="c", ttl_s=1)
        clock.advance(1)
        locks.acquire("metric:a", holder="d", ttl_s=1)
        with pytest.raises(RacefreeError):
            locks.renew(stale)
        delta = {name: _metric(name, **labels) - value for name, value in before.items()}
        assert delta == {
            "racefree_lock_acquired_total": 3,
            "racefree_lock_busy_total": 1,
            "racefree_lock_timeout_total": 1,
            "racefree_lock_lost_total": 1,
            "racefree_lock_hold_seconds_count": 1,
            "racefree_lock_hold_seconds_sum": 3.0,
        }
        assert _metric("racefree_lock_wait_seconds_count", **labels, outcome="acquired") == (
            wait_before + 3
        )


def test_advisory_locks_are_refused_on_sqlite_with_a_clear_error(
    db: Database, clock: ManualClock
) -> None:
    if db.dialect is Dialect.POSTGRESQL:
        assert AdvisoryLocks(db, clock).key_id("k") == advisory_key("racefree", "k")
        return
    with pytest.raises(AdvisoryUnavailable, match="need a PostgreSQL database"):
        AdvisoryLocks(db, clock)
