"""The activation cascade and its reversal: calls into the domains that own the rows.

They run inside the transition's transaction, after its CAS, so either all of
them commit with the new state and the audit row, or none does. Each returns
the number of rows it changed, for the response and the audit row. Nothing
here writes another domain's SQL: agents suspend, sessions revoke and
transactions cancel themselves.

**Lock order** (PostgreSQL, READ COMMITTED, where each statement sees what was
committed when it started) -- the one order every writer follows, also stated
in ``docs/concurrency.md``: kill switch row -> agents -> sessions ->
transactions. Each step locks the rows that writers racing the next step must
pass through, so a racer either committed before the lock (and the next
statement sees its work) or waits and then finds the door shut:

1. ``ACTIVE`` agents are suspended (:func:`racefree.agents.availability.suspend_all`).
   Opening a session first locks its agent row under ``status = 'ACTIVE'``
   (:func:`~racefree.agents.availability.lock_active`), so a session opened
   concurrently is visible to step 2, and later ones are refused;
2. sessions are revoked (:func:`racefree.sessions.revocation.revoke_where`).
   Admitting a transaction writes its session row under ``revoked_at IS NULL``:
   likewise for step 3;
3. open transactions are cancelled and their reservations released
   (:func:`racefree.transactions.cancellation.cancel_open`), sessions locked
   before transactions as the movers lock them.
"""

from __future__ import annotations

from racefree.agents import availability
from racefree.agents.machine import KILL_SWITCH_SUSPENSION
from racefree.core.condition import TRUE
from racefree.core.db import Tx
from racefree.sessions.revocation import revoke_where
from racefree.transactions.cancellation import cancel_open
from racefree.transactions.machine import Reason

KILL_SWITCH_REASON = KILL_SWITCH_SUSPENSION
CANCEL_ERROR = Reason.KILL_SWITCH.value


def suspend_agents(tx: Tx, now: int) -> int:
    return availability.suspend_all(tx, reason=KILL_SWITCH_REASON, now=now)


def revoke_sessions(tx: Tx, now: int) -> int:
    """Revoke every unrevoked session (after suspending agents: see the module docstring)."""
    return revoke_where(tx, TRUE, now=now, reason=KILL_SWITCH_REASON)


def cancel_transactions(tx: Tx, now: int) -> int:
    """Cancel every open transaction and give back what it reserved on its session."""
    return cancel_open(tx, error=CANCEL_ERROR, now=now)


def reactivate_agents(tx: Tx, now: int) -> int:
    """Undo only what the kill switch did: agents an operator suspended stay suspended."""
    return availability.reactivate_all(tx, reason=KILL_SWITCH_REASON, now=now)
