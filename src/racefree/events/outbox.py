"""The audit log read as a transactional outbox, in a gap-free order.

Every audit row is an event: it is written in the transaction of the change it
records, so it exists if and only if that change committed. Readers (the SSE
stream, the webhook deliverer) move a cursor through it and must never pass an
event that commits later.

**Why ids alone are not the cursor.** If a transaction could take id 10, another
take id 11 and commit, a reader see 11 and move its cursor to 11, and then the
first commit 10 -- below the cursor -- 10 would be skipped forever. Audit ids are
taken as a transaction commits, under the audit chain head's lock
(:mod:`racefree.core.audit`), so on PostgreSQL ids do follow commit order; the
outbox does not rely on it: its order below is final by construction, whatever
order ids are taken in.

**The order used instead: (txid, id).** On PostgreSQL each row stores the id of
its inserting transaction (``audit_log.txid``, default ``pg_current_xact_id()``,
migration 0012). Every transaction whose xid is below the *xmin* of a fresh
snapshot has ended, so the set of rows with ``txid < xmin`` is final: no row can
ever join it. :func:`head` is the last position in that final set, and readers
only read up to it (:func:`read`), in ``(txid, id)`` order. A late commit has a
txid at or above the xmin every reader saw while it was running, so it is read
after the positions those readers passed -- never skipped. Within one
transaction rows keep id order; a transaction that starts after another
committed gets a larger xid, so causally ordered events stay in order.

The price: a transaction that stays open anywhere in the cluster holds the
head back until it ends (events are delayed, never lost).

**SQLite** has one writer at a time, and a row's id is allocated inside its
``BEGIN IMMEDIATE`` transaction, so commit order is id order; ``txid`` is 0 and
the order is plain id order, and every committed row is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from racefree.core.audit import AuditEntry
from racefree.core.clock import isoformat
from racefree.core.db import Tx

#: the largest page a reader asks for
MAX_PAGE = 1000


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the outbox order: everything at or before it has been handled."""

    txid: int
    id: int


START = Position(0, 0)


@dataclass(frozen=True, slots=True)
class Event:
    """One audit row seen as an event."""

    position: Position
    entry: AuditEntry

    @property
    def id(self) -> int:
        return self.entry.id

    @property
    def type(self) -> str:
        return self.entry.event_type

    def payload(self) -> dict[str, Any]:
        """The body of a webhook and the ``data:`` of a stream frame (docs/events.md)."""
        e = self.entry
        return {
            "id": e.id,
            "type": e.event_type,
            "occurred_at": isoformat(e.at),
            "data": {
                "severity": e.severity.value,
                "actor": e.actor,
                "agent_id": e.agent_id,
                "session_id": e.session_id,
                "transaction_id": e.transaction_id,
                "request_id": e.request_id,
                "details": e.details,
            },
        }


@dataclass(frozen=True, slots=True)
class Batch:
    """Events read after a position, and the position the reader may move to.

    ``position`` can be past the last event (events of other types, or nothing
    new): every event up to it has been considered.
    """

    events: list[Event]
    position: Position


# the oldest transaction still running: everything below it has ended (committed or not)
_PG_XMIN = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"
_HEAD_PG = (
    f"SELECT txid, id FROM audit_log WHERE txid < {_PG_XMIN} ORDER BY txid DESC, id DESC LIMIT 1"
)
_HEAD_SQLITE = "SELECT txid, id FROM audit_log ORDER BY txid DESC, id DESC LIMIT 1"


def head(tx: Tx) -> Position:
    """The last position whose events are final: nothing can ever commit at or before it."""
    row = tx.one(_HEAD_SQLITE if tx.is_sqlite else _HEAD_PG)
    return START if row is None else Position(int(row["txid"]), int(row["id"]))


def read(
    tx: Tx,
    after: Position,
    *,
    types: Sequence[str] | None = None,
    limit: int = 100,
    upto: Position | None = None,
) -> Batch:
    """Final events after ``after`` (and at most ``upto``), in outbox order.

    ``types`` keeps only those event types (``None``: all). The head is taken
    first, in its own statement: every row at or before it is final, so the
    later SELECT sees exactly those.
    """
    limit = max(1, min(limit, MAX_PAGE))
    bound = head(tx) if upto is None else min(upto, head(tx))
    if bound <= after:
        return Batch([], after)
    params: dict[str, Any] = {
        "after_txid": after.txid,
        "after_id": after.id,
        "upto_txid": bound.txid,
        "upto_id": bound.id,
        "limit": limit,
    }
    sql = (
        "SELECT * FROM audit_log WHERE (txid, id) > (:after_txid, :after_id)"
        " AND (txid, id) <= (:upto_txid, :upto_id)"
    )
    if types is not None:
        names = [f"t{i}" for i in range(len(types))]
        if not names:
            return Batch([], bound)
        sql += f" AND event_type IN ({', '.join(':' + n for n in names)})"
        params.update(zip(names, types, strict=True))
    sql += " ORDER BY txid, id LIMIT :limit"
    events = [_event(row) for row in tx.all(sql, params)]
    position = events[-1].position if len(events) == limit else bound
    return Batch(events, position)


def count_after(
    tx: Tx, after: Position, *, types: Sequence[str] | None = None, cap: int = 100_000
) -> int:
    """How many committed events come after ``after`` in outbox order (at most ``cap``).

    Every committed row counts, final or not: one that a still-running older
    transaction holds above the head is committed and not yet readable -- lag
    all the same. Rows of transactions that have not committed are invisible.
    """
    params: dict[str, Any] = {"txid": after.txid, "id": after.id, "cap": cap}
    where = "(txid, id) > (:txid, :id)"
    if types is not None:
        if not types:
            return 0
        names = [f"t{i}" for i in range(len(types))]
        where += f" AND event_type IN ({', '.join(':' + n for n in names)})"
        params.update(zip(names, types, strict=True))
    return int(
        tx.scalar(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM audit_log WHERE {where} LIMIT :cap) AS behind",
            params,
        )
    )


def rewind(tx: Tx, n: int) -> Position:
    """The position before the last ``n`` final events (to show the most recent ones)."""
    end = head(tx)
    rows = tx.all(
        "SELECT txid, id FROM audit_log WHERE (txid, id) <= (:txid, :id)"
        " ORDER BY txid DESC, id DESC LIMIT :n",
        {"txid": end.txid, "id": end.id, "n": n + 1},
    )
    if len(rows) <= n:
        return START
    return Position(int(rows[-1]["txid"]), int(rows[-1]["id"]))


def position_of(tx: Tx, event_id: int) -> Position | None:
    """Where event ``event_id`` sits in the outbox order (to resume after it)."""
    row = tx.one("SELECT txid, id FROM audit_log WHERE id = :id", {"id": event_id})
    return None if row is None else Position(int(row["txid"]), int(row["id"]))


def _event(row: dict[str, Any]) -> Event:
    return Event(Position(int(row["txid"]), int(row["id"])), AuditEntry.from_row(row))
