"""Reading the kill switch's persisted state (the one row, scope ``global``)."""

from __future__ import annotations

from dataclasses import dataclass

from racefree.core.db import Tx

GLOBAL_SCOPE = "global"


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


def read(tx: Tx) -> KillSwitchStatus:
    row = tx.one(
        "SELECT state, version, activation_id, reason, actor, activated_at,"
        " recovery_started_at, recovery_eligible_at FROM kill_switch WHERE scope = :scope",
        {"scope": GLOBAL_SCOPE},
    )
    if row is None:  # the first migration inserts the row; its absence is a broken install
        raise RuntimeError("kill_switch row missing: run `racefree db upgrade`")
    return KillSwitchStatus(**row)
