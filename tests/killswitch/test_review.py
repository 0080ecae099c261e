"""Review: every master-password check goes through the reserved attempts (five per window)."""

from __future__ import annotations

import pytest

from racefree import killswitch, operators
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.killswitch import policy, recovery, status
from racefree.killswitch.settings import KillSwitchSettings
from racefree.operators.errors import AuthCode
from racefree.testing import race, tally

PASSWORD = "correct horse battery staple"
SETTINGS = KillSwitchSettings(recovery_wait_s=86400, recovery_wait_owner_s=1800)


@pytest.fixture(autouse=True)
def master_password(db: Database, clock: ManualClock) -> str:
    operators.bootstrap(db, master_password=PASSWORD, now=clock.now())
    return PASSWORD


def _set(db: Database, clock: ManualClock, password: str, seconds: int = 60) -> object:
    return policy.set_wait(
        db, SETTINGS, policy.WAIT, seconds, password, now=clock.now(), actor="cli"
    )


def _code(fn: object, *args: object, **kwargs: object) -> object:
    with pytest.raises(RacefreeError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value.code


def _checks() -> float:
    return operators.MASTER_PASSWORD_CHECKS._value.get()  # type: ignore[attr-defined]


def test_settings_set_refuses_the_right_password_during_a_lockout(
    db: Database, clock: ManualClock
) -> None:
    killswitch.activate_now(db, "drill", now=clock.now())
    for i in range(5):
        _code(recovery.start, db, f"wrong {i}", now=clock.now(), wait_s=0, owner_wait_s=0)
    before = _checks()
    assert _code(_set, db, clock, PASSWORD, 0) is AuthCode.MASTER_PASSWORD_LOCKED
    assert _checks() == before  # refused without an Argon2 check
    with db.read() as tx:
        assert policy.read(tx) is None  # nothing stored: the wait was not shortened


def test_wrong_passwords_to_settings_set_are_counted_and_lock_out(
    db: Database, clock: ManualClock
) -> None:
    before = _checks()
    outcomes = race(8, lambda i: _set(db, clock, f"wrong {i}"))
    assert _checks() - before <= 5
    counts = tally(outcomes)
    assert counts["MASTER_PASSWORD_LOCKED"] == 4, counts  # the fifth plus three refused
    assert counts["INVALID_MASTER_PASSWORD"] == 4, counts
    with db.read() as tx:
        assert status.read(tx).lockout_until == clock.now() + 1800
    assert _code(_set, db, clock, PASSWORD) is AuthCode.MASTER_PASSWORD_LOCKED
    clock.advance(1800)
    assert _set(db, clock, PASSWORD) == policy.RecoveryPolicy(60, 1800)


def _wait_for(db: Database, failed_attempts: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.read() as tx:
            if status.read(tx).failed_attempts == failed_attempts:
                return
    raise AssertionError("the attempt was never reserved")


def test_a_step_checked_against_the_old_password_fails_once_a_rotation_committed(
    db: Database, clock: ManualClock
) -> None:
    import threading

    from racefree.core.passwords import hash_password

    new_hash = hash_password("a brand new master password")
    killswitch.activate_now(db, "drill", now=clock.now())
    recovery.start(db, PASSWORD, now=clock.now(), wait_s=0, owner_wait_s=0)
    _code(recovery.complete, db, "wrong", now=clock.now())  # count 1: the settle writes the row
    result: list[object] = []

    def complete() -> None:
        try:
            result.append(recovery.complete(db, PASSWORD, now=clock.now()))
        except RacefreeError as error:
            result.append(error.code)

    worker = threading.Thread(target=complete)
    worker.start()
    _wait_for(db, 2)  # reserved; the Argon2 check of the old password is under way
    with db.write() as tx:  # hold the row (the settle waits), and rotate meanwhile
        still = tx.scalar(
            "UPDATE kill_switch SET updated_at = updated_at WHERE scope = 'global'"
            " RETURNING failed_attempts"
        )
        tx.execute(
            "UPDATE system_settings SET value = :v WHERE key = :k",
            {"v": new_hash, "k": operators.MASTER_PASSWORD_KEY},
        )
    worker.join(30)
    assert still == 2, "the settle ran before the rotation: the interleaving was not forced"
    assert result == [AuthCode.INVALID_MASTER_PASSWORD]  # the old password no longer opens it
    with db.read() as tx:
        assert status.read(tx).state == "RECOVERING"


def test_a_right_password_in_flight_does_not_lift_a_lockout_wrong_ones_set_after_it(
    db: Database, clock: ManualClock
) -> None:
    import threading

    killswitch.activate_now(db, "drill", now=clock.now())
    go = threading.Event()
    codes: list[object] = []

    def wrong(i: int) -> None:
        go.wait(10)
        codes.append(_code(recovery.abort, db, f"wrong {i}", now=clock.now()))

    def right() -> None:
        try:
            recovery.start(db, PASSWORD, now=clock.now(), wait_s=0, owner_wait_s=0)
            codes.append("started")
        except RacefreeError as error:
            codes.append(error.code)

    threads = [threading.Thread(target=wrong, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    holder = threading.Thread(target=right)
    holder.start()
    _wait_for(db, 1)  # the right one reserved first; the wrong ones reserve during its check
    go.set()
    for t in [*threads, holder]:
        t.join(30)
    with db.read() as tx:
        now = status.read(tx)
    wrong_checked = codes.count(AuthCode.INVALID_MASTER_PASSWORD)
    if codes.count(AuthCode.MASTER_PASSWORD_LOCKED) and now.lockout_until is None:
        wrong_checked += 1  # told 429 before the right one gave its reservation back
    # the wrong guesses stay counted (the next wrong one locks again), or the lockout stands
    assert now.lockout_until == clock.now() + 1800 or now.failed_attempts >= wrong_checked - 1
    assert now.failed_attempts >= codes.count(AuthCode.INVALID_MASTER_PASSWORD), (codes, now)
