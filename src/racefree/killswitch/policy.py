"""Recovery waits as server policy, stored in the database.

The wait between starting and completing a recovery is the one delay an
attacker who stole an operator token and the master password must sit out, so
it must not come from whoever calls: a ``RACEFREE_RECOVERY_WAIT_S=0`` in a CLI's
environment would otherwise skip the server's 24 hours. The waits are written
once, by the first process that needs them -- ``racefree serve`` at first
start, from its settings, or else the first recovery start that succeeds, in
its own transaction (a refused one stores nothing) -- and changed afterwards
only by :func:`set_wait` (``racefree settings set``), which takes the master
password.
"""

from __future__ import annotations

from dataclasses import dataclass

from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.db import Database, Tx
from racefree.core.errors import GeneralCode, RacefreeError
from racefree.killswitch import attempts
from racefree.killswitch.settings import KillSwitchSettings

#: The policy's names, as stored and as ``racefree settings set`` takes them.
WAIT = "recovery_wait_s"
OWNER_WAIT = "recovery_wait_owner_s"
NAMES = (WAIT, OWNER_WAIT)
MAX_WAIT_S = 30 * 86400


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    wait_s: int
    owner_wait_s: int


_SEED = (
    "INSERT INTO system_settings (key, value, updated_at) VALUES (:k, :v, :now)"
    " ON CONFLICT (key) DO NOTHING"
)


def defaults(settings: KillSwitchSettings) -> RecoveryPolicy:
    """The waits a process's settings would store when no policy is stored yet."""
    return RecoveryPolicy(settings.recovery_wait_s, settings.recovery_wait_owner_s)


def in_force(tx: Tx, default: RecoveryPolicy, *, now: int) -> RecoveryPolicy:
    """The stored policy; ``default`` is stored first, in ``tx``, when none is stored yet.

    Only a write that may store it calls this: the first start, or a recovery start in
    the transaction of its successful CAS (a refused start rolls it back with the rest).
    """
    for name, value in ((WAIT, default.wait_s), (OWNER_WAIT, default.owner_wait_s)):
        tx.execute(_SEED, {"k": name, "v": str(int(value)), "now": now})
    found = read(tx)
    assert found is not None
    return found


def read(tx: Tx) -> RecoveryPolicy | None:
    rows = tx.all(
        "SELECT key, value FROM system_settings WHERE key IN (:wait, :owner_wait)",
        {"wait": WAIT, "owner_wait": OWNER_WAIT},
    )
    stored = {r["key"]: int(r["value"]) for r in rows}
    if set(stored) != set(NAMES):
        return None
    return RecoveryPolicy(stored[WAIT], stored[OWNER_WAIT])


def current(db: Database, settings: KillSwitchSettings, *, now: int) -> RecoveryPolicy:
    """The stored policy; stored first from ``settings`` when nothing has stored it yet."""
    with db.read() as tx:
        found = read(tx)
    if found is not None:
        return found
    with db.write() as tx:
        return in_force(tx, defaults(settings), now=now)


def set_wait(
    db: Database,
    settings: KillSwitchSettings,
    name: str,
    seconds: int,
    password: str,
    *,
    now: int,
    actor: str,
) -> RecoveryPolicy:
    """Change one wait; needs the master password (401 ``INVALID_MASTER_PASSWORD``,
    429 ``MASTER_PASSWORD_LOCKED``: the attempt counts like a recovery step's).

    ``settings`` only fills a policy nobody has stored yet (as :func:`current` does).
    """
    if name not in NAMES:
        raise RacefreeError(
            GeneralCode.VALIDATION_ERROR, detail=f"unknown setting {name!r}: one of {list(NAMES)}"
        )
    if not 0 <= seconds <= MAX_WAIT_S:
        raise RacefreeError(
            GeneralCode.VALIDATION_ERROR, detail=f"{name} must be between 0 and {MAX_WAIT_S}"
        )
    # an attempt reserved like any other: five per window, none checked during a lockout
    checked = attempts.verify(db, password, action=f"set_{name}", now=now, actor=actor)
    current(db, settings, now=now)  # both waits stored, so the change is to a whole policy
    with db.write() as tx:
        attempts.hold_password(tx, checked)  # a rotation since the check refuses the change
        tx.execute(
            "INSERT INTO system_settings (key, value, updated_at) VALUES (:k, :v, :now)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            {"k": name, "v": str(seconds), "now": now},
        )
        audit.record(
            tx,
            "SERVER_POLICY_CHANGED",
            at=now,
            severity=Severity.WARNING,
            actor=actor,
            details={"setting": name, "value": seconds},
        )
        found = read(tx)
    assert found is not None
    return found
