"""core.locks advisory backend: PostgreSQL only, 64-bit keyed-hash keys, same exceptions."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import LockCode, RacefreeError
from racefree.core.locks import AdvisoryLocks, LockBusy, advisory_key
from racefree.testing import race, tally, wait_until_blocked

T = TypeVar("T")


@pytest.fixture(params=["postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    """Advisory locks are PostgreSQL's (SQLite's refusal: tests/core/test_locks.py)."""
    name: str = request.param
    return name


@pytest.fixture
def advisory(db: Database, clock: ManualClock) -> AdvisoryLocks:
    return AdvisoryLocks(db, clock)


class TestKeys:
    def test_keys_are_signed_64_bit_stable_and_namespaced(self) -> None:
        key = advisory_key("racefree", "plan-group:1")
        assert -(2**63) <= key < 2**63
        assert key == advisory_key("racefree", "plan-group:1")
        assert key != advisory_key("other", "plan-group:1")
        assert key != advisory_key("racefree", "plan-group:2")

    def test_keys_use_all_64_bits(self) -> None:
        keys = [advisory_key("racefree", f"k:{i}") for i in range(2000)]
        assert len(set(keys)) == len(keys)
        assert any(abs(k) >= 2**32 for k in keys)
        assert any(k < 0 for k in keys)


def _elsewhere(fn: Callable[[], T]) -> T:
    """Run ``fn`` on another thread (its own connection and transaction); re-raise its error."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result(timeout=60)


def _hold_once(advisory: AdvisoryLocks, key: str, **kwargs: Any) -> None:
    with advisory.hold(key, **kwargs):
        pass


class TestTransactionScoped:
    def test_the_lock_lasts_exactly_as_long_as_its_transaction(
        self, advisory: AdvisoryLocks
    ) -> None:
        with advisory.hold("adv:a"):
            assert advisory.holder_pid("adv:a") is not None
            with pytest.raises(LockBusy) as busy:  # another transaction is refused
                _elsewhere(lambda: _hold_once(advisory, "adv:a"))
            assert busy.value.holder is not None
            assert busy.value.holder.startswith("pg-backend:")
            assert busy.value.expires_at_ms is None
        assert advisory.holder_pid("adv:a") is None
        with advisory.hold("adv:a"):  # free again after commit
            pass

    def test_concurrent_holders_have_exactly_one_winner(self, advisory: AdvisoryLocks) -> None:
        release, refused = threading.Event(), tally([])  # the winner holds until 5 are refused
        counting = threading.Lock()

        def attempt(i: int) -> int:
            try:
                with advisory.hold("adv:race"):
                    assert release.wait(60)
            except LockBusy:
                with counting:
                    refused["busy"] += 1
                    if refused["busy"] == 5:
                        release.set()
                raise
            return i

        outcomes = race(6, attempt)
        # LockBusy is a RacefreeError: LOCK_TIMEOUT with a wait of 0
        assert tally(outcomes) == {"won": 1, "LOCK_TIMEOUT": 5}
        assert all(isinstance(o.error, LockBusy) for o in outcomes if not o.won)

    def test_a_waiter_gets_the_lock_when_the_holding_transaction_ends(
        self, advisory: AdvisoryLocks, db: Database
    ) -> None:
        taken = threading.Event()

        def holder() -> None:  # holds until the waiter is seen blocked on the lock
            with advisory.hold("adv:w"):
                taken.set()
                wait_until_blocked(db)

        thread = threading.Thread(target=holder)
        thread.start()
        assert taken.wait(30)
        with advisory.hold("adv:w", wait_s=30) as tx:
            assert tx.scalar("SELECT current_setting('lock_timeout')") == "0"
        thread.join()

    def test_a_too_short_wait_is_lock_timeout_and_leaves_the_transaction_usable(
        self, advisory: AdvisoryLocks, db: Database
    ) -> None:
        def wait_briefly() -> int:
            with db.write() as tx:
                with pytest.raises(RacefreeError) as timeout:
                    advisory.acquire_xact(tx, "adv:t", wait_s=0.05)
                assert timeout.value.code is LockCode.LOCK_TIMEOUT
                return int(tx.scalar("SELECT 1 AS one"))  # savepoint rolled back, tx alive

        with advisory.hold("adv:t"):
            assert _elsewhere(wait_briefly) == 1


class TestSessionScoped:
    def test_a_session_lock_holds_across_transactions_until_unlocked(
        self, advisory: AdvisoryLocks, db: Database
    ) -> None:
        with advisory.session("adv:s") as conn:
            conn.execute("SELECT 1")  # autocommit statements: the lock survives them
            with pytest.raises(LockBusy):
                _elsewhere(lambda: _hold_once(advisory, "adv:s"))
            with pytest.raises(RacefreeError) as timeout, advisory.session("adv:s", wait_s=0.05):
                pass
            assert timeout.value.code is LockCode.LOCK_TIMEOUT
        with advisory.hold("adv:s"):
            pass

    def test_held_lists_granted_locks_with_their_64_bit_keys(self, advisory: AdvisoryLocks) -> None:
        with advisory.session("adv:list"):
            held = advisory.held()
        assert [h.key_id for h in held if h.granted] == [advisory.key_id("adv:list")]


def test_a_sigkilled_holder_process_releases_the_advisory_lock_at_once(
    advisory: AdvisoryLocks, db_url: str
) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from racefree.core.clock import SystemClock
        from racefree.core.db import Database
        from racefree.core.locks import AdvisoryLocks
        db = Database.from_url({db_url!r})
        with AdvisoryLocks(db, SystemClock()).session("adv:killed"):
            print("held", flush=True)
            time.sleep(120)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy):
            _hold_once(advisory, "adv:killed")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # the server ends the dead client's session and its locks with it; no TTL to wait out
    with advisory.hold("adv:killed", wait_s=30):
        assert advisory.holder_pid("adv:killed") is not None


def test_advisory_acquisitions_are_logged_with_their_backend(
    advisory: AdvisoryLocks, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="racefree.locks"), advisory.hold("adv:log"):
        pass
    (line,) = [r.getMessage() for r in caplog.records if r.name == "racefree.locks"]
    assert "key=adv:log backend=advisory outcome=acquired wait_ms=" in line
