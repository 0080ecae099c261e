"""Recovery: master password, owner signature, the wait, and racing steps."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree import killswitch, operators, owners
from racefree.client import OwnerSigner
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.killswitch import recovery, status
from racefree.killswitch.errors import KillSwitchCode
from racefree.operators.errors import AuthCode
from racefree.owners.errors import OwnerCode
from racefree.testing import race, tally
from tests import factory

PASSWORD = "correct horse battery staple"
WAIT_S = 86400
OWNER_WAIT_S = 1800
OWNER = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()


@pytest.fixture(autouse=True)
def master_password(db: Database, clock: ManualClock) -> str:
    operators.bootstrap(db, master_password=PASSWORD, now=clock.now())
    return PASSWORD


@pytest.fixture
def activated(db: Database, clock: ManualClock) -> killswitch.Activation:
    return killswitch.activate_now(db, "test", now=clock.now(), actor="operator:test")


def _start(
    db: Database, clock: ManualClock, password: str | None = PASSWORD, signature: str | None = None
) -> recovery.RecoveryStarted:
    return recovery.start(
        db,
        password,
        now=clock.now(),
        wait_s=WAIT_S,
        owner_wait_s=OWNER_WAIT_S,
        owner_signature=signature,
    )


def _complete(
    db: Database, clock: ManualClock, password: str = PASSWORD
) -> recovery.RecoveryCompleted:
    return recovery.complete(db, password, now=clock.now())


def _abort(db: Database, clock: ManualClock, password: str = PASSWORD) -> recovery.RecoveryAborted:
    return recovery.abort(db, password, now=clock.now())


def _state(db: Database) -> status.KillSwitchStatus:
    with db.read() as tx:
        return status.read(tx)


def _events(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type=event_type, limit=1000)


def _signature(db: Database, clock: ManualClock, key: Ed25519PrivateKey = OWNER) -> str:
    with db.write() as tx:
        nonce, _ = owners.issue_nonce(tx, now=clock.now())
    return OwnerSigner(key).header(recovery.OWNER_ACTION, nonce, clock.now())


def _error(fn: object, *args: object, **kwargs: object) -> RacefreeError:
    with pytest.raises(RacefreeError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


# -- the happy path ----------------------------------------------------------------


@pytest.mark.usefixtures("activated")
def test_recovery_starts_waits_the_configured_time_then_completes(
    db: Database, clock: ManualClock
) -> None:
    started = _start(db, clock)
    assert started.state == "RECOVERING"
    assert started.wait_seconds == WAIT_S
    assert started.recovery_eligible_at == clock.now() + WAIT_S
    assert _state(db).recovery_eligible_at == started.recovery_eligible_at

    clock.advance(WAIT_S)
    done = _complete(db, clock)
    assert done.state == "NORMAL"
    now = _state(db)
    assert (now.state, now.version, now.activation_id, now.recovery_eligible_at) == (
        "NORMAL",
        3,
        None,
        None,
    )
    [entry] = _events(db, "KILL_SWITCH_RECOVERED")
    assert entry.details["agents_reactivated"] == 0


def test_completing_recovery_reactivates_only_agents_the_switch_suspended(
    db: Database, clock: ManualClock
) -> None:
    w = factory.world(db, now=clock.now())
    killswitch.activate_now(db, "test", now=clock.now())
    _start(db, clock)
    clock.advance(WAIT_S)
    assert _complete(db, clock).agents_reactivated == len(w.active_agents)
    with db.read() as tx:
        statuses = {
            r["id"]: (r["status"], r["suspension_reason"])
            for r in tx.all("SELECT id, status, suspension_reason FROM agents")
        }
        unrevoked = tx.scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
    assert all(statuses[a] == ("ACTIVE", None) for a in w.active_agents)
    assert statuses[w.operator_suspended[0]] == ("SUSPENDED", "operator")
    assert statuses[w.terminated[0]] == ("TERMINATED", None)
    assert unrevoked == 0  # sessions stay revoked


@pytest.mark.usefixtures("activated")
def test_completing_before_the_wait_is_409_recovery_wait_required_with_retry_after(
    db: Database, clock: ManualClock
) -> None:
    started = _start(db, clock)
    clock.advance(WAIT_S - 100)
    error = _error(_complete, db, clock)
    assert error.code is KillSwitchCode.RECOVERY_WAIT_REQUIRED
    assert error.retry_after == 100
    assert error.details == {
        "recovery_eligible_at": started.recovery_eligible_at,
        "remaining_seconds": 100,
    }
    assert _state(db).state == "RECOVERING"
    clock.advance(100)
    assert _complete(db, clock).state == "NORMAL"


@pytest.mark.usefixtures("activated")
def test_abort_rolls_recovery_back_to_activated(db: Database, clock: ManualClock) -> None:
    _start(db, clock)
    assert _abort(db, clock).state == "ACTIVATED"
    now = _state(db)
    assert (now.state, now.recovery_eligible_at) == ("ACTIVATED", None)
    assert now.activation_id is not None  # still the same activation
    [entry] = _events(db, "KILL_SWITCH_RECOVERY_ROLLED_BACK")
    assert entry.details["cause"] == "abort"
    # and recovery can start again
    assert _start(db, clock).state == "RECOVERING"


# -- wrong states ----------------------------------------------------------------


def test_starting_recovery_when_normal_is_409_kill_switch_not_active(
    db: Database, clock: ManualClock
) -> None:
    assert _error(_start, db, clock).code is KillSwitchCode.KILL_SWITCH_NOT_ACTIVE
    [refused] = _events(db, recovery.REFUSED_EVENT)
    assert refused.details == {"action": "start_recovery", "code": "KILL_SWITCH_NOT_ACTIVE"}


@pytest.mark.usefixtures("activated")
def test_starting_recovery_twice_is_409_recovery_already_started(
    db: Database, clock: ManualClock
) -> None:
    _start(db, clock)
    assert _error(_start, db, clock).code is KillSwitchCode.RECOVERY_ALREADY_STARTED


@pytest.mark.usefixtures("activated")
def test_complete_or_abort_without_recovery_is_409_invalid_recovery_state(
    db: Database, clock: ManualClock
) -> None:
    clock.advance(WAIT_S)
    assert _error(_complete, db, clock).code is KillSwitchCode.INVALID_RECOVERY_STATE
    assert _error(_abort, db, clock).code is KillSwitchCode.INVALID_RECOVERY_STATE
    assert _state(db).state == "ACTIVATED"


# -- races -----------------------------------------------------------------------


@pytest.mark.usefixtures("activated")
def test_racing_recovery_starts_have_one_winner(db: Database, clock: ManualClock) -> None:
    # five racers: a window admits five master-password checks however many arrive
    # (docs/operations.md)
    outcomes = race(5, lambda i: _start(db, clock))
    assert tally(outcomes) == {"won": 1, "RECOVERY_ALREADY_STARTED": 4}
    assert len(_events(db, "KILL_SWITCH_RECOVERY_STARTED")) == 1
    assert len(_events(db, recovery.REFUSED_EVENT)) == 4
    assert _state(db).version == 2


@pytest.mark.usefixtures("activated")
def test_racing_complete_and_abort_have_exactly_one_winner(
    db: Database, clock: ManualClock
) -> None:
    for _ in range(3):
        _start(db, clock)
        clock.advance(WAIT_S)
        outcomes = race(2, lambda i: (_complete, _abort)[i](db, clock))
        assert tally(outcomes) == {"won": 1, "INVALID_RECOVERY_STATE": 1}
        final = _state(db).state
        assert final == ("NORMAL" if outcomes[0].won else "ACTIVATED")
        if final == "NORMAL":
            killswitch.activate_now(db, "again", now=clock.now())


# -- owners ----------------------------------------------------------------------


def _owned_agents(db: Database, clock: ManualClock, key: Ed25519PrivateKey, n: int) -> list[str]:
    """``n`` agents whose owner ``key`` is LOCKED in: only such owners gate recovery."""
    with db.write() as tx:
        ids = [
            factory.agent(tx, owner=OwnerSigner(key).public_key, now=clock.now()) for _ in range(n)
        ]
        tx.execute("UPDATE agents SET owner_verified = 1")
    return ids


def test_with_an_owner_recovery_needs_the_owners_signature_and_waits_less(
    db: Database, clock: ManualClock
) -> None:
    _owned_agents(db, clock, OWNER, 2)
    killswitch.activate_now(db, "test", now=clock.now())
    assert _error(_start, db, clock).code is OwnerCode.OWNER_AUTH_REQUIRED
    assert _state(db).state == "ACTIVATED"

    started = _start(db, clock, signature=_signature(db, clock))
    assert started.wait_seconds == OWNER_WAIT_S
    assert started.owner_public_key == OwnerSigner(OWNER).public_key


def test_a_signer_who_owns_no_agent_is_403_owner_mismatch_and_nothing_changes(
    db: Database, clock: ManualClock
) -> None:
    _owned_agents(db, clock, OWNER, 1)
    killswitch.activate_now(db, "test", now=clock.now())
    signature = _signature(db, clock, key=STRANGER)
    assert _error(_start, db, clock, signature=signature).code is OwnerCode.OWNER_MISMATCH
    assert _state(db).state == "ACTIVATED"
    [refused] = _events(db, recovery.REFUSED_EVENT)
    assert refused.details["code"] == "OWNER_MISMATCH"


# -- the master password ---------------------------------------------------------


@pytest.mark.usefixtures("activated")
def test_a_wrong_password_is_401_and_counted(db: Database, clock: ManualClock) -> None:
    error = _error(_start, db, clock, password="wrong")
    assert error.code is AuthCode.INVALID_MASTER_PASSWORD
    assert error.details == {"failed_attempts": 1, "remaining_attempts": 4}
    assert _state(db).failed_attempts == 1
    [entry] = _events(db, "MASTER_PASSWORD_REJECTED")
    assert entry.details == {
        "action": "start_recovery",
        "outcome": "wrong_password",
        "failed_attempts": 1,
    }
    _start(db, clock)  # a right one resets the count
    assert _state(db).failed_attempts == 0


@pytest.mark.usefixtures("activated")
def test_five_wrong_passwords_lock_out_for_thirty_minutes(db: Database, clock: ManualClock) -> None:
    codes = [_error(_start, db, clock, password=f"wrong {i}").code for i in range(5)]
    assert codes == [AuthCode.INVALID_MASTER_PASSWORD] * 4 + [AuthCode.MASTER_PASSWORD_LOCKED]
    locked = _error(_start, db, clock)  # even the right password, while locked out
    assert locked.code is AuthCode.MASTER_PASSWORD_LOCKED
    assert locked.retry_after == 1800
    clock.advance(1799)
    assert _error(_start, db, clock).retry_after == 1
    clock.advance(1)
    assert _start(db, clock).state == "RECOVERING"
    assert len(_events(db, "MASTER_PASSWORD_LOCKED")) == 1
    # every attempt is audited: 4 wrong + 2 refused while locked out (+ the lockout itself)
    assert len(_events(db, "MASTER_PASSWORD_REJECTED")) == 6


@pytest.mark.usefixtures("activated")
def test_a_lockout_during_recovery_rolls_back_to_activated(
    db: Database, clock: ManualClock
) -> None:
    _start(db, clock)
    clock.advance(WAIT_S)
    for i in range(4):
        assert _error(_complete, db, clock, password=f"wrong {i}").code is (
            AuthCode.INVALID_MASTER_PASSWORD
        )
    assert _state(db).state == "RECOVERING"
    assert _error(_abort, db, clock, password="wrong").code is AuthCode.MASTER_PASSWORD_LOCKED
    now = _state(db)
    assert (now.state, now.recovery_eligible_at) == ("ACTIVATED", None)
    [rollback] = _events(db, "KILL_SWITCH_RECOVERY_ROLLED_BACK")
    assert rollback.details["cause"] == "master_password_lockout"
    [lockout] = _events(db, "MASTER_PASSWORD_LOCKED")
    assert lockout.details["recovery_rolled_back"] is True


@pytest.mark.usefixtures("activated")
def test_concurrent_wrong_passwords_are_all_counted(db: Database, clock: ManualClock) -> None:
    outcomes = race(5, lambda i: _start(db, clock, password=f"wrong {i}"))
    assert tally(outcomes) == {"INVALID_MASTER_PASSWORD": 4, "MASTER_PASSWORD_LOCKED": 1}
    now = _state(db)
    assert (now.failed_attempts, now.lockout_until) == (5, clock.now() + 1800)
    assert len(_events(db, "MASTER_PASSWORD_REJECTED")) == 4
    assert len(_events(db, "MASTER_PASSWORD_LOCKED")) == 1
