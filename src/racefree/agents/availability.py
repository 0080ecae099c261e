"""Is this agent ACTIVE: the one home of the SQL fragment, the row lock and the refusal.

Sessions, renewals and transactions all refuse work for an agent that is not
ACTIVE. They put :func:`active_exists` into their own CAS (so the check and the
write are one statement), lock the agent row with :func:`lock_active` where a
concurrent suspension must be ordered before or after them, and turn the status
they read into the error with :func:`unavailable`.
"""

from __future__ import annotations

from racefree.agents.errors import AgentCode
from racefree.agents.machine import ACTIVE, SUSPENDED, TERMINATED
from racefree.core.cas import cas_update
from racefree.core.condition import Condition
from racefree.core.db import Tx
from racefree.core.errors import Code, RacefreeError
from racefree.owners.errors import OwnerCode


def active_exists(agent_id_sql: str) -> str:
    """SQL true while the agent whose id is the expression ``agent_id_sql`` is ACTIVE."""
    return (
        f"EXISTS (SELECT 1 FROM agents WHERE agents.id = {agent_id_sql}"
        f" AND agents.status = '{ACTIVE}')"
    )


def unavailable(status: str | None, agent_id: str | None = None) -> RacefreeError | None:
    """409 ``AGENT_SUSPENDED`` / 410 ``AGENT_TERMINATED`` for a non-ACTIVE ``status``.

    ``None`` when the agent is ACTIVE. ``details`` names the agent when given.
    """
    code = unavailable_code(status)
    if code is None:
        return None
    return RacefreeError(code, details={} if agent_id is None else {"agent_id": agent_id})


def unavailable_code(status: str | None) -> Code | None:
    """The code refusing work for an agent in ``status`` (None when it is ACTIVE)."""
    if status == ACTIVE:
        return None
    return AgentCode.AGENT_SUSPENDED if status == SUSPENDED else AgentCode.AGENT_TERMINATED


def refusal(tx: Tx, agent_id: str) -> RacefreeError | None:
    """Read the agent's status and refuse: 404 when it does not exist, None when ACTIVE."""
    status = tx.scalar("SELECT status FROM agents WHERE id = :id", {"id": agent_id})
    if status is None:
        return RacefreeError(OwnerCode.AGENT_NOT_FOUND, details={"agent_id": agent_id})
    return unavailable(status, agent_id)


def lock_active(tx: Tx, agent_id: str) -> None:
    """A no-op CAS on the ACTIVE agent row: refuses a non-ACTIVE agent, and holds the row.

    On PostgreSQL the row lock orders this transaction against a concurrent
    suspension (or the kill switch's suspend-all): it commits either before
    (and this one is refused) or after (and its cascade reaches what this one wrote).
    """

    def classify(inner: Tx) -> RacefreeError:
        error = refusal(inner, agent_id)
        assert error is not None  # the CAS missed, so the agent is gone or not ACTIVE
        return error

    cas_update(
        tx,
        f"UPDATE agents SET status = status WHERE id = :id AND status = '{ACTIVE}'",
        {"id": agent_id},
        classify=classify,
        returning="id",
    )


def suspend_all(tx: Tx, *, reason: str, now: int) -> int:
    """Every ACTIVE agent -> SUSPENDED with ``reason`` (set-based; the kill switch cascade)."""
    return tx.execute(
        "UPDATE agents SET status = 'SUSPENDED', suspension_reason = :reason, updated_at = :now"
        f" WHERE status = '{ACTIVE}'",
        {"reason": reason, "now": now},
    )


def reactivate_all(tx: Tx, *, reason: str, now: int) -> int:
    """Undo :func:`suspend_all` for ``reason`` only: others' suspensions stay."""
    return tx.execute(
        f"UPDATE agents SET status = '{ACTIVE}', suspension_reason = NULL, updated_at = :now"
        " WHERE status = 'SUSPENDED' AND suspension_reason = :reason",
        {"reason": reason, "now": now},
    )


def any_live(tx: Tx, where: Condition) -> bool:
    """Whether an agent that is not TERMINATED matches ``where`` (e.g. an owner condition)."""
    found = tx.scalar(
        f"SELECT 1 FROM agents WHERE status <> '{TERMINATED}' AND ({where.sql}) LIMIT 1",
        dict(where.params),
    )
    return found is not None
