"""Cancel-open: the set-based ``cancel`` move of :data:`TRANSACTIONS` and its release.

The kill switch cancels every transaction that has not reached the irreversible
step yet -- the sources of the machine's ``cancel`` transition -- and gives back
what each reserved on its session, in the same transaction; terminating an
agent does the same for that agent's transactions (``where``). An executor that
claimed a row first (``EXECUTING -> SUBMITTED``) keeps both its row and its
reservation, because the release is computed from the rows actually cancelled.
Each cancelled transaction gets its own ``TRANSACTION_CANCELLED`` audit row
(every status move is audited), chained with the transaction's other entries
as it commits (``core.audit``).

The session rows are the sessions domain's (:mod:`racefree.sessions.spending`):
it locks them and writes the release; this module says which rows. Lock order
(PostgreSQL): the sessions of open transactions first, in id order, then the
transactions -- the order movers (reject, expire, fail) take them in, so the two
can never deadlock. SQLite runs one writer at a time, so there plain statements
are exact.
"""

from __future__ import annotations

import functools

from racefree.core import audit
from racefree.core.condition import TRUE, Condition
from racefree.core.db import Tx
from racefree.sessions import spending
from racefree.transactions import metrics
from racefree.transactions.machine import TRANSACTIONS, Move, Reason

_MOVE = TRANSACTIONS.transitions[Move.CANCEL]
#: Statuses the ``cancel`` transition leaves (docs/state-machines.md): the open ones.
OPEN = _MOVE.sources
_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN) + ")"
_TARGET = _MOVE.target


def _open(where: Condition) -> str:
    return f"status IN {_OPEN_SQL} AND ({where.sql})"


def cancel_open(
    tx: Tx, *, error: str, now: int, actor: str | None = None, where: Condition = TRUE
) -> int:
    """Cancel every open transaction (matching ``where``) with ``error``, releasing its
    reservation and writing one audit row for it; returns how many."""
    open_rows = _open(where)
    params = where.bind({"error": error, "now": now})
    owed = f"SELECT session_id, amount FROM transactions WHERE {open_rows}"
    # sessions first, in id order: movers (reject, expire, fail) take a session, then its row
    spending.lock(
        tx, Condition(f"id IN (SELECT session_id FROM transactions WHERE {open_rows})", params)
    )
    if tx.is_sqlite:  # one writer: three plain statements are exact
        cancelled = tx.all(
            "SELECT agent_id, session_id, id AS transaction_id, tier FROM transactions"
            f" WHERE {open_rows} ORDER BY id",
            params,
        )
        tx.execute(spending.release_sums(owed), params)
        tx.execute(_cancel(open_rows), params)
    else:  # one statement: the release is the sum of the rows it actually cancelled
        cancelled = tx.all(
            f"WITH cancelled AS ({_cancel(open_rows)}"
            " RETURNING agent_id, session_id, id AS transaction_id, amount, tier),"
            f" released AS ({spending.release_sums('SELECT session_id, amount FROM cancelled')}"
            " RETURNING sessions.id)"
            " SELECT agent_id, session_id, transaction_id, tier FROM cancelled"
            " ORDER BY transaction_id",
            params,
        )
    # counted by the rows actually cancelled, once the cancellation commits
    tiers = [r["tier"] for r in cancelled]
    tx.after_commit(functools.partial(metrics.reached, _TARGET, tiers))
    details = {"from": "|".join(_MOVE.sources), "to": _TARGET, "reason": error}
    assert _MOVE.audit_event is not None
    # one row per cancelled transaction, chained as the transaction commits
    return audit.record_each(
        tx,
        _MOVE.audit_event,
        cancelled,
        at=now,
        severity=_MOVE.severity,
        actor=actor,
        details=details,
    )


def cancel_for_agent(tx: Tx, agent_id: str, *, now: int, actor: str | None = None) -> int:
    """A terminated agent's open work ends CANCELLED (``AGENT_TERMINATED``), released.

    Its queued work would otherwise wait forever: nothing runs the work of an
    agent that is not ACTIVE. Call it in the terminating transaction.
    """
    return cancel_open(
        tx,
        error=Reason.AGENT_TERMINATED.value,
        now=now,
        actor=actor,
        where=Condition.of("agent_id = :agent", agent=agent_id),
    )


def _cancel(open_rows: str) -> str:
    return (
        f"UPDATE transactions SET status = '{_TARGET}', error = :error, updated_at = :now"
        f" WHERE {open_rows}"
    )
