"""Recovery: ``ACTIVATED -> RECOVERING -> NORMAL`` (or back to ACTIVATED), two steps apart.

Each step first checks the master password (:mod:`.attempts`: an attempt
reserved by CAS, then the check outside any write transaction), then runs its
CAS as the first write of a transaction of its own. Starting recovery also
needs an owner signature when a non-terminated agent has a LOCKED owner (a
key someone proved to hold); the signer must be such an owner. A GRACE key or
a terminated agent's key counts for nothing: a key nobody holds must not make
recovery impossible. The wait between the steps is the stored policy's
(:mod:`.policy`) ``recovery_wait_owner_s`` with such owners, ``recovery_wait_s``
without. A step refused after a correct password (a lost race, too early, a bad
signature) is audited as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from racefree import owners
from racefree.agents import availability
from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.condition import Condition
from racefree.core.db import Database, Row, Tx
from racefree.core.errors import RacefreeError
from racefree.core.machine import AuditContext, Transition
from racefree.killswitch import attempts, cascade, policy, status
from racefree.killswitch.errors import KillSwitchCode
from racefree.killswitch.machine import COMPLETE_RECOVERY, KILL_SWITCH, ROLL_BACK, START_RECOVERY
from racefree.killswitch.status import ACTIVATED, GLOBAL_SCOPE, NORMAL, RECOVERING
from racefree.owners.errors import OwnerCode

OWNER_ACTION = "kill_switch_recovery"
REFUSED_EVENT = "KILL_SWITCH_RECOVERY_REFUSED"
DEFAULT_ACTOR = "master_password"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RecoveryStarted:
    state: str
    recovery_eligible_at: int
    wait_seconds: int
    owner_public_key: str | None


@dataclass(frozen=True, slots=True)
class RecoveryCompleted:
    state: str
    agents_reactivated: int


@dataclass(frozen=True, slots=True)
class RecoveryAborted:
    state: str


def start(
    db: Database,
    password: str | None,
    *,
    now: int,
    wait_s: int,
    owner_wait_s: int,
    owner_signature: str | None = None,
    actor: str = DEFAULT_ACTOR,
) -> RecoveryStarted:
    """ACTIVATED -> RECOVERING; 409 ``KILL_SWITCH_NOT_ACTIVE`` / ``RECOVERY_ALREADY_STARTED``.

    The wait is the stored policy's (:mod:`.policy`); ``wait_s`` and ``owner_wait_s``
    (the caller's settings) are stored as the policy, in the start's own transaction,
    only when none is stored yet and the start succeeds.
    """

    def run(tx: Tx) -> RecoveryStarted:
        checks: dict[str, Any] = {}

        def owner_check(inner: Tx, _row: Row) -> str | None:
            checks["has_owner"] = availability.any_live(inner, owners.locked_owner())
            if not checks["has_owner"]:
                return None
            proof = owners.verify(inner, owner_signature, action=OWNER_ACTION, now=now)
            if not availability.any_live(inner, owners.locked_owner(proof.public_key)):
                raise RacefreeError(
                    OwnerCode.OWNER_MISMATCH,
                    detail="the signer is not the LOCKED owner of a non-terminated agent",
                )
            return proof.public_key

        def schedule(inner: Tx, _row: Row) -> int:
            # the stored policy; stored here, by the start that succeeds, when none is yet
            waits = policy.in_force(inner, policy.RecoveryPolicy(wait_s, owner_wait_s), now=now)
            eligible_at = now + (waits.owner_wait_s if checks["has_owner"] else waits.wait_s)
            inner.execute(
                "UPDATE kill_switch SET recovery_eligible_at = :at WHERE scope = :scope",
                {"at": eligible_at, "scope": GLOBAL_SCOPE},
            )
            return eligible_at

        result = KILL_SWITCH.transition(
            tx,
            START_RECOVERY,
            GLOBAL_SCOPE,
            now=now,
            # the attempts' count is attempts.verify's own to settle, not a step's to reset
            values={"recovery_started_at": now},
            where=attempts.not_locked_out(now),
            cascades={"owner_public_key": owner_check, "recovery_eligible_at": schedule},
            audit_context=AuditContext(actor=actor),
            classify=_classifier(now),
        )
        eligible_at: int = result.effects["recovery_eligible_at"]
        return RecoveryStarted(
            state=RECOVERING,
            recovery_eligible_at=eligible_at,
            wait_seconds=eligible_at - now,
            owner_public_key=result.effects["owner_public_key"],
        )

    return _with_password(db, password, START_RECOVERY, now=now, actor=actor, run=run)


def complete(
    db: Database, password: str | None, *, now: int, actor: str = DEFAULT_ACTOR
) -> RecoveryCompleted:
    """RECOVERING -> NORMAL after ``recovery_eligible_at``; re-activates kill-switched agents."""

    def run(tx: Tx) -> RecoveryCompleted:
        result = KILL_SWITCH.transition(
            tx,
            COMPLETE_RECOVERY,
            GLOBAL_SCOPE,
            now=now,
            values={
                "activation_id": None,
                "reason": None,
                "actor": None,
                "activated_at": None,
                "recovery_started_at": None,
                "recovery_eligible_at": None,
            },
            where=Condition.of("recovery_eligible_at <= :now", now=now)
            & attempts.not_locked_out(now),
            cascades={
                "agents_reactivated": lambda inner, _row: cascade.reactivate_agents(inner, now)
            },
            audit_context=AuditContext(actor=actor),
            classify=_classifier(now),
        )
        return RecoveryCompleted(
            state=NORMAL, agents_reactivated=result.effects["agents_reactivated"]
        )

    return _with_password(db, password, COMPLETE_RECOVERY, now=now, actor=actor, run=run)


def abort(
    db: Database, password: str | None, *, now: int, actor: str = DEFAULT_ACTOR
) -> RecoveryAborted:
    """RECOVERING -> ACTIVATED; 409 ``INVALID_RECOVERY_STATE`` unless recovering."""

    def run(tx: Tx) -> RecoveryAborted:
        KILL_SWITCH.transition(
            tx,
            ROLL_BACK,
            GLOBAL_SCOPE,
            now=now,
            values={
                "recovery_started_at": None,
                "recovery_eligible_at": None,
            },
            where=attempts.not_locked_out(now),
            audit_context=AuditContext(actor=actor, details={"cause": "abort"}),
            classify=_classifier(now),
        )
        return RecoveryAborted(state=ACTIVATED)

    return _with_password(db, password, ROLL_BACK, now=now, actor=actor, run=run)


def _with_password(
    db: Database,
    password: str | None,
    action: str,
    *,
    now: int,
    actor: str,
    run: Callable[[Tx], T],
) -> T:
    checked = attempts.verify(db, password, action=action, now=now, actor=actor)
    try:
        with db.write() as tx:
            attempts.hold_password(tx, checked)  # first: a rotation since the check refuses
            return run(tx)
    except RacefreeError as refused:
        # the step's transaction rolled back; the attempt itself still leaves a trace
        with db.write() as tx:
            audit.record(
                tx,
                REFUSED_EVENT,
                at=now,
                severity=Severity.WARNING,
                actor=actor,
                details={"action": action, "code": refused.code.value},
            )
        raise


def _classifier(now: int) -> Callable[[Tx, Transition], RacefreeError]:
    """Why a recovery CAS missed: lockout, too early, or the state (one SELECT)."""

    def classify(tx: Tx, t: Transition) -> RacefreeError:
        current = status.read(tx)
        if current.state in t.sources:
            if current.locked_out(now):
                assert current.lockout_until is not None
                return attempts.locked_error(current.lockout_until, now)
            eligible_at = current.recovery_eligible_at
            if t.name == COMPLETE_RECOVERY and eligible_at is not None and eligible_at > now:
                return RacefreeError(
                    KillSwitchCode.RECOVERY_WAIT_REQUIRED,
                    details={
                        "recovery_eligible_at": eligible_at,
                        "remaining_seconds": eligible_at - now,
                    },
                    retry_after=eligible_at - now,
                )
        return RacefreeError(
            t.conflict_for(current.state),
            details={
                "current": current.state,
                "requested": t.target,
                "allowed": KILL_SWITCH.targets(current.state),
            },
        )

    return classify
