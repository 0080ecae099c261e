"""Master-password attempts against the kill switch: reserved in SQL, five per window.

An attempt is *reserved* by a CAS on the kill switch row before the password
is checked, so the Argon2 check (deliberately slow, run outside any write
transaction) happens only for a reservation that was granted::

    UPDATE kill_switch SET failed_attempts = <count> + 1,
           lockout_until = CASE WHEN <count> + 1 >= 5 THEN :now + 1800 END
     WHERE scope = 'global' AND (lockout_until IS NULL OR lockout_until <= :now)

The fifth reservation closes the window at once: however many guesses arrive
together, at most five are checked per window, and a right password sent
after the fifth wrong one is refused (429 ``MASTER_PASSWORD_LOCKED``,
``Retry-After``) without being checked. Then:

* a right password settles the count (back to 0, lockout lifted): the holders
  proved themselves, and a step refused for another reason (too early) does
  not eat into their budget;
* a wrong one leaves its reservation counted; the fifth, if the switch is
  RECOVERING, rolls recovery back to ACTIVATED in the same transaction.

Only authenticated operators get here (the HTTP routes check the operator
token first), so nobody else can spend attempts. Every attempt leaves an
audit row.
"""

from __future__ import annotations

from typing import Any

from racefree import operators
from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.condition import Condition
from racefree.core.db import Database, Tx
from racefree.core.errors import RacefreeError
from racefree.core.machine import AuditContext
from racefree.killswitch import status
from racefree.killswitch.machine import KILL_SWITCH, ROLL_BACK
from racefree.killswitch.status import GLOBAL_SCOPE, RECOVERING
from racefree.operators.errors import AuthCode

MAX_FAILED_ATTEMPTS = 5
LOCKOUT_S = 30 * 60

#: SQL condition: the master password is not locked out at ``:now``.
NOT_LOCKED_OUT = "lockout_until IS NULL OR lockout_until <= :now"


def not_locked_out(now: int) -> Condition:
    """True unless the master password is locked out at ``now``."""
    return Condition.of(NOT_LOCKED_OUT, now=now)


REJECTED_EVENT = "MASTER_PASSWORD_REJECTED"
LOCKED_EVENT = "MASTER_PASSWORD_LOCKED"

# A lockout that has expired starts the count afresh (the WHERE admits only
# rows whose lockout is NULL or over, so a non-NULL one here is an old one).
_COUNT = "(CASE WHEN lockout_until IS NULL THEN failed_attempts ELSE 0 END) + 1"
_RESERVE = (
    f"UPDATE kill_switch SET failed_attempts = {_COUNT},"
    f" lockout_until = CASE WHEN {_COUNT} >= :max THEN :until ELSE NULL END,"
    " updated_at = :now"
    f" WHERE scope = :scope AND ({NOT_LOCKED_OUT})"
    " RETURNING failed_attempts, lockout_until"
)


def locked_error(lockout_until: int, now: int) -> RacefreeError:
    return RacefreeError(
        AuthCode.MASTER_PASSWORD_LOCKED,
        details={"lockout_until": lockout_until},
        retry_after=max(1, lockout_until - now),
        hint="wait for the lockout to end; every attempt meanwhile is refused and audited",
    )


def verify(db: Database, password: str | None, *, action: str, now: int, actor: str) -> str:
    """Return the hash ``password`` matched if it is the master password; 401 or 429 otherwise.

    The attempt is reserved before the check and recorded (and committed)
    before raising. The step the password opens calls :func:`hold_password` with the
    returned hash in its own transaction: a rotation that committed after the check
    then refuses the step instead of letting the old password through.
    """
    if not password:
        raise RacefreeError(
            AuthCode.AUTH_REQUIRED,
            detail="the master password is required",
            hint="send the X-Master-Password header",
        )
    reserved = _reserve(db, action=action, now=now, actor=actor)
    with db.read() as tx:
        matched = operators.matched_master_password(tx, password)  # Argon2: outside a write
    if matched is not None:
        _settle(db, reserved, now=now)
        return matched
    raise _record_failure(db, reserved, action=action, now=now, actor=actor)


def hold_password(tx: Tx, checked_hash: str) -> None:
    """First in the step's transaction: a rotation committed since the check refuses it."""
    operators.hold_master_password(tx, checked_hash)


def _reserve(db: Database, *, action: str, now: int, actor: str) -> dict[str, Any]:
    """Count one attempt before checking it; 429 when the window has none left."""
    with db.write() as tx:
        row = tx.one(
            _RESERVE,
            {
                "scope": GLOBAL_SCOPE,
                "now": now,
                "max": MAX_FAILED_ATTEMPTS,
                "until": now + LOCKOUT_S,
            },
        )
        if row is not None:
            return row
        current = status.read(tx)
        _audit_locked_out(tx, action=action, now=now, actor=actor)
    raise locked_error(current.lockout_until or now + LOCKOUT_S, now)


def _settle(db: Database, reserved: dict[str, Any], *, now: int) -> None:
    """A right password: the count starts afresh, and the lockout is lifted.

    Only what was reserved up to and including this attempt is forgiven: when others
    reserved since (wrong guesses racing the right one), only this attempt's own
    reservation is given back, so those stay counted and a step or a settle cannot
    wipe them (which would let a burst have its five checked again and again).
    """
    with db.write() as tx:
        tx.execute(
            "UPDATE kill_switch SET failed_attempts = CASE"
            " WHEN failed_attempts = :k OR failed_attempts <= 0 THEN 0"
            " ELSE failed_attempts - 1 END,"
            " lockout_until = NULL, updated_at = :now"
            " WHERE scope = :scope AND (failed_attempts <> 0 OR lockout_until IS NOT NULL)",
            {"scope": GLOBAL_SCOPE, "now": now, "k": reserved["failed_attempts"]},
        )


def _audit_locked_out(tx: Tx, *, action: str, now: int, actor: str) -> None:
    _audit_rejected(tx, "locked_out", action=action, now=now, actor=actor)


def _audit_rejected(
    tx: Tx, outcome: str, *, action: str, now: int, actor: str, **extra: Any
) -> None:
    details = {"action": action, "outcome": outcome, **extra}
    _audit(tx, REJECTED_EVENT, Severity.WARNING, now=now, actor=actor, details=details)


def _record_failure(
    db: Database, reserved: dict[str, Any], *, action: str, now: int, actor: str
) -> RacefreeError:
    """A wrong password on a reserved attempt: audit it; the fifth locks out."""
    attempts = reserved["failed_attempts"]
    with db.write() as tx:
        if reserved["lockout_until"] is not None:
            return _lock_out(tx, reserved, action=action, now=now, actor=actor)
        _audit_rejected(
            tx, "wrong_password", action=action, now=now, actor=actor, failed_attempts=attempts
        )
    return RacefreeError(
        AuthCode.INVALID_MASTER_PASSWORD,
        details={
            "failed_attempts": attempts,
            "remaining_attempts": max(0, MAX_FAILED_ATTEMPTS - attempts),
        },
    )


def _lock_out(tx: Tx, row: dict[str, Any], *, action: str, now: int, actor: str) -> RacefreeError:
    # hold the row, and only while the lockout our reservation set still stands (a right
    # password settled meanwhile lifts it: then recovery is not rolled back)
    state = tx.scalar(
        "UPDATE kill_switch SET updated_at = :now WHERE scope = :scope AND lockout_until = :until"
        " RETURNING state",
        {"now": now, "scope": GLOBAL_SCOPE, "until": row["lockout_until"]},
    )
    if state is None:
        # a right password settled meanwhile and gave its reservation back: this one is
        # not the fifth wrong one after all (unless a newer lockout stands)
        current = status.read(tx)
        if current.locked_out(now):
            assert current.lockout_until is not None
            _audit_locked_out(tx, action=action, now=now, actor=actor)
            return locked_error(current.lockout_until, now)
        _audit_rejected(
            tx,
            "wrong_password",
            action=action,
            now=now,
            actor=actor,
            failed_attempts=current.failed_attempts,
        )
        return RacefreeError(
            AuthCode.INVALID_MASTER_PASSWORD,
            details={
                "failed_attempts": current.failed_attempts,
                "remaining_attempts": max(0, MAX_FAILED_ATTEMPTS - current.failed_attempts),
            },
        )
    rolled_back = False
    if state == RECOVERING:
        # our UPDATE holds the row, so this CAS cannot miss
        KILL_SWITCH.transition(
            tx,
            ROLL_BACK,
            GLOBAL_SCOPE,
            now=now,
            values={"recovery_started_at": None, "recovery_eligible_at": None},
            audit_context=AuditContext(actor=actor, details={"cause": "master_password_lockout"}),
        )
        rolled_back = True
    _audit(
        tx,
        LOCKED_EVENT,
        Severity.CRITICAL,
        now=now,
        actor=actor,
        details={
            "action": action,
            "outcome": "locked_out_now",
            "failed_attempts": row["failed_attempts"],
            "lockout_until": row["lockout_until"],
            "recovery_rolled_back": rolled_back,
        },
    )
    return locked_error(row["lockout_until"], now)


def _audit(
    tx: Tx, event: str, severity: Severity, *, now: int, actor: str, details: dict[str, Any]
) -> None:
    audit.record(tx, event, at=now, severity=severity, actor=actor, details=details)
