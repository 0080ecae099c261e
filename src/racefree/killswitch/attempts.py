"""Master-password attempts against the kill switch: counted in SQL, locked out after five.

Argon2 verification is deliberately slow (tens of milliseconds), so it runs
*outside* any write transaction; only its outcome is recorded, with one
conditional UPDATE on the kill switch row:

* a wrong password increments ``failed_attempts`` in SQL (never computed in
  Python, so concurrent wrong guesses are all counted); the fifth sets
  ``lockout_until`` (30 minutes), and if the switch was RECOVERING the same
  transaction rolls it back to ACTIVATED (a CAS);
* while locked out nothing is verified at all: the attempt is audited and
  refused with 429 ``MASTER_PASSWORD_LOCKED`` and ``Retry-After``.

Every attempt leaves an audit row.
"""

from __future__ import annotations

from typing import Any

from racefree import operators
from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.condition import Condition
from racefree.core.db import Database, Tx
from racefree.core.errors import ErrorCode, RacefreeError
from racefree.core.machine import AuditContext
from racefree.killswitch import status
from racefree.killswitch.machine import KILL_SWITCH, ROLL_BACK
from racefree.killswitch.status import GLOBAL_SCOPE, RECOVERING

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
_RECORD_FAILURE = (
    f"UPDATE kill_switch SET failed_attempts = {_COUNT},"
    f" lockout_until = CASE WHEN {_COUNT} >= :max THEN :until ELSE NULL END,"
    " updated_at = :now"
    f" WHERE scope = :scope AND ({NOT_LOCKED_OUT})"
    " RETURNING state, failed_attempts, lockout_until"
)


def locked_error(lockout_until: int, now: int) -> RacefreeError:
    return RacefreeError(
        ErrorCode.MASTER_PASSWORD_LOCKED,
        details={"lockout_until": lockout_until},
        retry_after=max(1, lockout_until - now),
        hint="wait for the lockout to end; every attempt meanwhile is refused and audited",
    )


def verify(db: Database, password: str | None, *, action: str, now: int, actor: str) -> None:
    """Return if ``password`` is the master password; raise 401 or 429 otherwise.

    Failed and refused attempts are recorded (and committed) before raising.
    """
    with db.read() as tx:
        current = status.read(tx)
    if current.locked_out(now):
        assert current.lockout_until is not None
        _record_refused(db, action=action, now=now, actor=actor)
        raise locked_error(current.lockout_until, now)
    if not password:
        raise RacefreeError(
            ErrorCode.AUTH_REQUIRED,
            detail="the master password is required",
            hint="send the X-Master-Password header",
        )
    with db.read() as tx:
        if operators.check_master_password(tx, password):
            return
    raise _record_failure(db, action=action, now=now, actor=actor)


def _record_refused(db: Database, *, action: str, now: int, actor: str) -> None:
    with db.write() as tx:
        _audit_locked_out(tx, action=action, now=now, actor=actor)


def _audit_locked_out(tx: Tx, *, action: str, now: int, actor: str) -> None:
    _audit(
        tx,
        REJECTED_EVENT,
        Severity.WARNING,
        now=now,
        actor=actor,
        details={"action": action, "outcome": "locked_out"},
    )


def _record_failure(db: Database, *, action: str, now: int, actor: str) -> RacefreeError:
    """Count one wrong password; lock out (and roll recovery back) on the fifth."""
    with db.write() as tx:
        row = tx.one(
            _RECORD_FAILURE,
            {
                "scope": GLOBAL_SCOPE,
                "now": now,
                "max": MAX_FAILED_ATTEMPTS,
                "until": now + LOCKOUT_S,
            },
        )
        if row is None:  # another wrong attempt locked it out while we verified
            current = status.read(tx)
            _audit_locked_out(tx, action=action, now=now, actor=actor)
            error = locked_error(current.lockout_until or now + LOCKOUT_S, now)
        elif row["lockout_until"] is not None:
            error = _lock_out(tx, row, action=action, now=now, actor=actor)
        else:
            attempts = row["failed_attempts"]
            _audit(
                tx,
                REJECTED_EVENT,
                Severity.WARNING,
                now=now,
                actor=actor,
                details={
                    "action": action,
                    "outcome": "wrong_password",
                    "failed_attempts": attempts,
                },
            )
            error = RacefreeError(
                ErrorCode.INVALID_MASTER_PASSWORD,
                details={
                    "failed_attempts": attempts,
                    "remaining_attempts": MAX_FAILED_ATTEMPTS - attempts,
                },
            )
    return error


def _lock_out(tx: Tx, row: dict[str, Any], *, action: str, now: int, actor: str) -> RacefreeError:
    rolled_back = False
    if row["state"] == RECOVERING:
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
