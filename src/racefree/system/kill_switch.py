"""Reading the kill switch's persisted state (the one row, scope ``global``).

Every reader goes to the database: the state must hold across processes (two
servers on one PostgreSQL database, a CLI activation against a running
server), so nothing here caches. A read is one primary-key lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from racefree.core.clock import isoformat
from racefree.core.db import Database, Tx
from racefree.core.errors import RacefreeError
from racefree.system.errors import SystemCode

GLOBAL_SCOPE = "global"

NORMAL = "NORMAL"
ACTIVATED = "ACTIVATED"
RECOVERING = "RECOVERING"
STATES = (NORMAL, ACTIVATED, RECOVERING)


@dataclass(frozen=True, slots=True)
class KillSwitchStatus:
    state: str
    version: int
    activation_id: str | None
    reason: str | None
    actor: str | None
    activated_at: int | None
    recovery_started_at: int | None
    recovery_eligible_at: int | None
    failed_attempts: int
    lockout_until: int | None

    @property
    def is_normal(self) -> bool:
        return self.state == NORMAL

    def locked_out(self, now: int) -> bool:
        """True while the master password is locked after too many wrong attempts."""
        return self.lockout_until is not None and self.lockout_until > now


@dataclass(frozen=True, slots=True)
class GuardView:
    """The columns the request guard needs, nothing more."""

    state: str
    activated_at: int | None
    reason: str | None


def _missing() -> RuntimeError:
    # the first migration inserts the row; its absence is a broken install
    return RuntimeError("kill_switch row missing: run `racefree db upgrade`")


def read(tx: Tx) -> KillSwitchStatus:
    row = tx.one(
        "SELECT state, version, activation_id, reason, actor, activated_at,"
        " recovery_started_at, recovery_eligible_at, failed_attempts, lockout_until"
        " FROM kill_switch WHERE scope = :scope",
        {"scope": GLOBAL_SCOPE},
    )
    if row is None:
        raise _missing()
    return KillSwitchStatus(**row)


_GUARD_VIEW = "SELECT state, activated_at, reason FROM kill_switch WHERE scope = :scope"

#: The guard's read, as a statement (for a caller that reads it together with others).
GUARD_VIEW_READ = (_GUARD_VIEW, {"scope": GLOBAL_SCOPE})


def guard_view(tx: Tx) -> GuardView:
    """State, activation time and reason: the guard's one-row read per request."""
    row = tx.one(_GUARD_VIEW, {"scope": GLOBAL_SCOPE})
    if row is None:
        raise _missing()
    return GuardView(**row)


def system_locked(view: GuardView) -> RacefreeError:
    """The 503 every refused request gets while the switch is engaged."""
    return RacefreeError(
        SystemCode.SYSTEM_LOCKED,
        details={
            "state": view.state,
            "activated_at": isoformat(view.activated_at),
            "activated_at_epoch": view.activated_at,
            "reason": view.reason,
        },
        hint="the kill switch is engaged: recover it through /v1/kill-switch/recovery",
    )


def hold_normal(tx: Tx) -> None:
    """In a write transaction that *inserts* what the cascade must reach: keep NORMAL till commit.

    The cascade's set-based UPDATEs cannot see a row another transaction has
    not committed yet. On PostgreSQL the kill switch row is read ``FOR SHARE``:
    an activation (which updates that row) waits for this transaction, so its
    cascade sees what this one inserted; a transaction that comes after an
    activation waits for it and then reads ACTIVATED, and is refused. SQLite
    runs one writer at a time, so a plain read inside the write is the same.
    """
    lock = "" if tx.is_sqlite else " FOR SHARE"
    row = tx.one(_GUARD_VIEW + lock, {"scope": GLOBAL_SCOPE})
    if row is None:
        raise _missing()
    view = GuardView(**row)
    if view.state != NORMAL:
        raise system_locked(view)


def is_normal(tx: Tx) -> bool:
    """False while the switch is ACTIVATED or RECOVERING: start no background work then."""
    state = tx.scalar("SELECT state FROM kill_switch WHERE scope = :scope", {"scope": GLOBAL_SCOPE})
    if state is None:
        raise _missing()
    return bool(state == NORMAL)


def lock_for_activation(tx: Tx) -> None:
    """Take the row ahead of a possible activation part-way through ``tx`` (PostgreSQL).

    A transaction that may activate the switch after locking other rows -- an
    AutoStop rule evaluated while a transaction settles -- takes this row first,
    in the activation's own lock order (kill switch, agents, sessions,
    transactions), so it and an operator's activation queue behind each other
    instead of deadlocking. SQLite has one writer: nothing to order.
    """
    if not tx.is_sqlite:
        tx.execute(
            "SELECT 1 FROM kill_switch WHERE scope = :scope FOR NO KEY UPDATE",
            {"scope": GLOBAL_SCOPE},
        )


def probe_state(db: Database, timeout_s: float) -> str | None:
    """The state, read on a fresh connection within ``timeout_s`` (metrics scrapes, probes)."""
    state: str | None = db.probe("SELECT state FROM kill_switch WHERE scope = 'global'", timeout_s)
    return state
