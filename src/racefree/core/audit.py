"""The append-only, tamper-evident audit log.

Rows are written with :func:`record` inside the transaction of the change they
describe, so a change and its audit row commit or vanish together. The database
itself refuses UPDATE and DELETE on ``audit_log`` (triggers created by the
first migration); on PostgreSQL TRUNCATE is refused too, and on SQLite so is an
INSERT that would replace a row (``INSERT OR REPLACE`` deletes without firing
DELETE triggers).

**The hash chain.** Each row carries ``chain_hash = sha256(previous row's
chain_hash ":" id ":" payload)``, where the payload is the row's content as
canonical ASCII JSON (:func:`payload`) and the first row links to
:data:`GENESIS` -- the construction of Certificate Transparency's log and of
ledger databases, as a single chain. The hash is computed in the transaction
that appends the row, through a one-row *chain head* (``audit_chain``: last id
and last hash). On PostgreSQL the head row is the serialisation point: one
statement updates it (taking its row lock until commit) and inserts the row
from its new value, so concurrent appenders line up, ids are assigned in
commit order, and the chain never forks; on SQLite the single writer already
serialises them. A rolled-back transaction takes its head update with it.

:func:`record` queues the row and the transaction appends its rows as its
last statements before COMMIT (:meth:`racefree.core.db.Tx.defer`): the head
lock, which every audited transaction shares, is then taken last and held
only while committing, so it can never close a deadlock cycle with the row
locks a transaction took before (a transaction waiting for the head holds
locks, but the head's holder waits for nothing). Entries are therefore not
visible to the transaction that writes them, only after it commits. On
PostgreSQL this also makes ids follow commit order (an id is taken under the
head lock, which is released only after the commit is visible).

**Every entry is an event** (:mod:`racefree.events.outbox`): the database fills
``txid`` (PostgreSQL: the appending transaction's id, ``pg_current_xact_id()``;
SQLite: 0) as the row is inserted, the outbox's reading order is ``(txid,
id)``. ``txid`` is a delivery-order hint assigned by the database, not content:
the chain does not cover it.

:func:`verify` (``racefree audit verify``) recomputes the chain and reports the
first broken link.

What the chain proves: if it verifies up to a head whose hash you recorded
elsewhere, no entry up to that head was changed, removed, reordered or
inserted since -- every edit of a past entry changes every later hash. It
also detects, without a recorded head, any edit that did not recompute all
later hashes and the head (a changed or deleted row, a forged row appended
without the head, a truncated tail).

What it does not prove: that someone able to write to the database freely
did not rewrite the whole chain from some entry on (recomputing every later
hash and the head) -- only a head recorded outside the database (printed by
``racefree audit verify``; keep it in a ticket, a log shipper, a second
system) exposes that; that an entry is *true* (it proves integrity since
writing, not the honesty of the writer); nothing about changes that wrote
no entry; and nothing about ``txid`` (an edited ``txid`` can reorder or hold
back delivery to stream and webhook readers, not change what an entry says).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from racefree.core import context
from racefree.core.db import Row, Tx

#: Domain events (every committed audit row) as log lines.
events_log = logging.getLogger("racefree.events")


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: int
    event_type: str
    severity: Severity
    actor: str | None
    agent_id: str | None
    session_id: str | None
    transaction_id: str | None
    details: dict[str, Any]
    request_id: str | None

    @classmethod
    def from_row(cls, row: Row) -> AuditEntry:
        return cls(
            id=row["id"],
            at=row["at"],
            event_type=row["event_type"],
            severity=Severity(row["severity"]),
            actor=row["actor"],
            agent_id=row["agent_id"],
            session_id=row["session_id"],
            transaction_id=row["transaction_id"],
            details=json.loads(row["details"]),
            request_id=row["request_id"],
        )


#: What the first entry's hash links to.
GENESIS = "0" * 64
CHAIN_SCOPE = "global"
_CHAIN = "audit_chain"
_CONTENT = (
    "at",
    "event_type",
    "severity",
    "actor",
    "agent_id",
    "session_id",
    "transaction_id",
    "details",
    "request_id",
)
#: An entry's content columns, in the order its hash covers them (:func:`payload`).
COLUMNS = _CONTENT
_COLUMNS = ", ".join(_CONTENT)
_VALUES = ", ".join(f":{c}" for c in _CONTENT)

# SQLite: the single writer serialises appenders; the hash is computed here.
HEAD_SQL = "SELECT last_id, last_hash FROM audit_chain WHERE scope = :scope"
INSERT_PREFIX = f"INSERT INTO audit_log (id, {_COLUMNS}, chain_hash)"
MOVE_HEAD_SQL = (
    "UPDATE audit_chain SET last_id = :id, last_hash = :hash WHERE scope = :scope"
    " AND last_id = :previous_id"
)
# PostgreSQL: one statement; the head row's lock (held to commit) orders the appenders, and
# the UPDATE reads the head as the previous appender committed it.
APPEND_PG_SQL = (
    "WITH head AS (UPDATE audit_chain SET last_id = last_id + 1, last_hash = encode(sha256("
    "convert_to(last_hash || ':' || (last_id + 1)::text || ':' || :payload, 'UTF8')), 'hex')"
    " WHERE scope = :scope RETURNING last_id, last_hash)"
    f" INSERT INTO audit_log (id, {_COLUMNS}, chain_hash)"
    f" SELECT last_id, {_VALUES}, last_hash FROM head"
)


def payload(row: Mapping[str, Any]) -> str:
    """An entry's content as canonical ASCII JSON: what its hash covers (besides the link)."""
    return json.dumps([row[c] for c in _CONTENT], separators=(",", ":"), ensure_ascii=True)


def link(previous_hash: str, entry_id: int, content: str) -> str:
    """The chain hash of entry ``entry_id`` whose content is ``content``."""
    return hashlib.sha256(f"{previous_hash}:{entry_id}:{content}".encode()).hexdigest()


def record(
    tx: Tx,
    event_type: str,
    *,
    at: int,
    severity: Severity = Severity.INFO,
    actor: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    transaction_id: str | None = None,
    details: dict[str, Any] | None = None,
    subjects: Mapping[str, str | None] | None = None,
) -> None:
    """Append one audit row in ``tx``, chained to the previous one (appended at commit),
    and log it as a domain event once ``tx`` commits.

    The row's ``request_id`` is the request's id (the client's acceptable
    ``X-Request-ID`` or one the server generated); ``details`` gains ``via`` when
    the change came through the console.
    """
    if subjects:  # a machine's generic subjects are these columns
        unknown = set(subjects) - {"agent_id", "session_id", "transaction_id"}
        if unknown:
            raise ValueError(f"audit_log has no subject columns {sorted(unknown)}")
        agent_id = subjects.get("agent_id", agent_id)
        session_id = subjects.get("session_id", session_id)
        transaction_id = subjects.get("transaction_id", transaction_id)
    entry = row(
        event_type,
        at=at,
        severity=severity,
        actor=actor,
        agent_id=agent_id,
        session_id=session_id,
        transaction_id=transaction_id,
        details=details,
    )
    tx.defer(_CHAIN, entry, _append)
    tx.after_commit(lambda: _log_event(entry))


def row(
    event_type: str,
    *,
    at: int,
    severity: Severity = Severity.INFO,
    actor: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    transaction_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The entry :func:`record` queues: its content, by :data:`COLUMNS` (for a statement
    that appends entries itself, :func:`append_pg`)."""
    entry = _row(event_type, at, severity, actor, details)
    entry.update(agent_id=agent_id, session_id=session_id, transaction_id=transaction_id)
    return entry


def logged(rows: Iterable[dict[str, Any]]) -> None:
    """Log committed entries that :func:`record` did not queue (:func:`append_pg`'s) as
    domain events, as :func:`record` logs its own once they commit."""
    for entry in rows:
        _log_event(entry)


#: Audit severities as log levels: a kill switch activation is CRITICAL in both.
_LEVELS = {
    Severity.INFO.value: logging.INFO,
    Severity.WARNING.value: logging.WARNING,
    Severity.CRITICAL.value: logging.CRITICAL,
}

#: Event types whose INFO entries log at DEBUG (:func:`routine`).
_ROUTINE: set[str] = set()


def routine(*event_types: str) -> None:
    """Log INFO entries of ``event_types`` at DEBUG: the steps every request of a kind takes.

    A payment commits four such steps and a renewal one; each would log a line beside
    the request's access line, and the four cost a payment about an eighth of its time
    on SQLite (issue 11: 240 µs of 1,983 at p50). The events an operator's log must show (DESIGN 11)
    are not routine; every entry is still written to the audit log and the outbox.
    """
    _ROUTINE.update(event_types)


def _log_event(row: dict[str, Any]) -> None:
    """One log line per committed audit row (kill switch moves, lockouts, token reuse, ...).

    After the commit, so the log never tells of a change that rolled back.
    """
    level = _LEVELS[row["severity"]]
    if level == logging.INFO and row["event_type"] in _ROUTINE:
        level = logging.DEBUG
    if not events_log.isEnabledFor(level):
        return
    fields = {k: v for k, v in row.items() if v is not None and k not in ("details", "at")}
    events_log.log(
        level, row["event_type"], extra={**fields, "details": json.loads(row["details"])}
    )


def record_each(
    tx: Tx,
    event_type: str,
    about: Iterable[Mapping[str, Any]],
    *,
    at: int,
    severity: Severity = Severity.INFO,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one audit row per item of ``about`` (each with ``agent_id``,
    ``session_id`` and ``transaction_id``); every row gets the same event,
    actor and details. Returns how many were queued.

    The rows join the chain with this transaction's other entries as it
    commits, in as few statements as the engine allows (:func:`_append`).
    """
    count = 0
    for item in about:
        row = _row(event_type, at, severity, actor, details)
        row.update(
            agent_id=item["agent_id"],
            session_id=item["session_id"],
            transaction_id=item["transaction_id"],
        )
        tx.defer(_CHAIN, row, _append)
        count += 1
    return count


def _row(
    event_type: str,
    at: int,
    severity: Severity,
    actor: str | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    via = context.via.get()
    if via is not None:
        details = {**(details or {}), "via": via}
    return {
        "at": at,
        "event_type": event_type,
        "severity": severity.value,
        "actor": actor,
        "details": json.dumps(details or {}, separators=(",", ":"), sort_keys=True),
        "request_id": context.request_id.get(),
    }


#: rows per multi-row INSERT when a transaction appends many entries at once
_INSERT_CHUNK = 200


def _append(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """Chain and insert this transaction's entries: the last statements before COMMIT.

    PostgreSQL, one entry (the common case): one statement (:data:`APPEND_PG_SQL`).
    Several entries (a kill switch cancelling many transactions): the head is
    locked, the hashes are computed here and the rows go in multi-row INSERTs,
    so the head is held for a few round trips, not one per entry. SQLite: the
    single writer already serialises appenders.
    """
    if not tx.is_sqlite and len(rows) == 1:
        row = rows[0]
        if tx.execute(APPEND_PG_SQL, {**row, "payload": payload(row), "scope": CHAIN_SCOPE}) != 1:
            raise RuntimeError(_NO_HEAD)
        return
    head = tx.one(HEAD_SQL if tx.is_sqlite else HEAD_SQL + " FOR UPDATE", {"scope": CHAIN_SCOPE})
    if head is None:
        raise RuntimeError(_NO_HEAD)
    entry_id, chained = int(head["last_id"]), str(head["last_hash"])
    for start in range(0, len(rows), _INSERT_CHUNK):
        values, params = [], {}
        for i, row in enumerate(rows[start : start + _INSERT_CHUNK]):
            entry_id += 1
            chained = link(chained, entry_id, payload(row))
            names = {c: f"{c}_{i}" for c in ("id", *_CONTENT, "hash")}
            values.append("(" + ", ".join(":" + n for n in names.values()) + ")")
            params.update({names[c]: row[c] for c in _CONTENT})
            params.update({names["id"]: entry_id, names["hash"]: chained})
        tx.execute(f"{INSERT_PREFIX} VALUES {', '.join(values)}", params)
    moved = tx.execute(
        MOVE_HEAD_SQL,
        {"id": entry_id, "hash": chained, "scope": CHAIN_SCOPE, "previous_id": head["last_id"]},
    )
    if moved != 1:  # the single writer (SQLite) or the row lock (PostgreSQL) makes this exact
        raise RuntimeError("the audit chain head moved while this transaction held it")


_NO_HEAD = "the audit chain head is missing: run racefree db upgrade"

#: One link of the chain computed by PostgreSQL, as :func:`link` computes it in Python.
_LINK_PG = (
    "encode(sha256(convert_to({hash} || ':' || ({id} + 1)::text || ':'"
    " || (CAST(:audit_payloads AS JSON) ->> {n}), 'UTF8')), 'hex')"
)


@functools.lru_cache(maxsize=64)  # built once per shape, not per payment
def append_pg(
    count: int, values: str, *, when: str, after: tuple[str, ...] = ()
) -> tuple[str, str]:
    """PostgreSQL: ``count`` entries chained and inserted by a caller's own statement.

    For a statement that is a whole transaction (autocommit), which has no commit
    of its own at which :meth:`Tx.defer` could append. Returns ``(ctes, insert)``:
    CTEs for the statement's ``WITH`` list and its final ``INSERT`` of the entries.
    ``values`` is a ``VALUES`` list of the entries, each row its index (0 to
    ``count - 1``) then its content in :data:`COLUMNS` order, with the values of
    :func:`row` (the hashes cover what :func:`payload` makes of them: the caller
    binds both from the same entries, :func:`append_pg_params`). ``when`` is the
    condition, on the statement's other CTEs, under which the entries are written;
    ``after`` names CTEs that must have run before the head is locked.

    The chain is appended as :func:`_append` does for several entries, in SQL: the
    head row is locked (``FOR UPDATE``: it waits for the appender before, and
    reads the head as that one committed it), the hashes follow from it one by one
    (``sha256`` of the same bytes as :func:`link`), the head moves to the last, and
    the rows go in with their ids and hashes. The head is locked only once
    ``when`` holds and the CTEs of ``after`` have run, so it is the last row lock
    the statement waits for -- as at the commit of a transaction that deferred its
    entries -- and it is held until the statement commits: ids follow commit
    order, and the chain never forks.
    """
    ran = "".join(f" AND (SELECT COUNT(*) FROM {name}) >= 0" for name in after)
    ctes = [
        "audit_head AS MATERIALIZED (SELECT last_id, last_hash FROM audit_chain"
        f" WHERE scope = '{CHAIN_SCOPE}' AND {when}{ran} FOR UPDATE)"
    ]
    source, id_, hash_ = "audit_head", "last_id", "last_hash"
    for i in range(count):
        ctes.append(
            f"audit_link_{i} AS MATERIALIZED (SELECT {i} AS i, {id_} + 1 AS id,"
            f" {_LINK_PG.format(hash=hash_, id=id_, n=i)} AS hash FROM {source})"
        )
        source, id_, hash_ = f"audit_link_{i}", "id", "hash"
    ctes.append(
        "audit_links AS ("
        + " UNION ALL ".join(f"SELECT * FROM audit_link_{i}" for i in range(count))
        + ")"
    )
    ctes.append(
        "audit_moved AS (UPDATE audit_chain SET last_id = l.id, last_hash = l.hash"
        f" FROM {source} l WHERE audit_chain.scope = '{CHAIN_SCOPE}' RETURNING audit_chain.last_id)"
    )
    content = ", ".join(f"v.{c}" for c in _CONTENT)
    insert = (
        f"{INSERT_PREFIX} SELECT l.id, {content}, l.hash FROM audit_links l"
        f" JOIN ({values}) AS v (i, {_COLUMNS}) ON v.i = l.i, audit_moved ORDER BY l.id"
    )
    return ", ".join(ctes), insert


def append_pg_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of :func:`append_pg`'s SQL for ``rows`` (in their order)."""
    # one JSON array of the payloads (ASCII JSON texts: PostgreSQL's ->> gives each back
    # byte for byte). Not a text[]: psycopg escapes an array's elements with a regex in
    # Python, 115 µs a payment against json.dumps's 8; nor one text parameter per entry,
    # which measured more PostgreSQL CPU under 8 clients than it saved (bench/RESULTS.md)
    return {"audit_payloads": json.dumps([payload(entry) for entry in rows])}


def entries(
    tx: Tx,
    *,
    after_id: int = 0,
    limit: int = 100,
    event_type: str | None = None,
    agent_id: str | None = None,
) -> list[AuditEntry]:
    """Entries in id order, after ``after_id``, optionally filtered."""
    sql = "SELECT * FROM audit_log WHERE id > :after_id"
    if event_type is not None:
        sql += " AND event_type = :event_type"
    if agent_id is not None:
        sql += " AND agent_id = :agent_id"
    sql += " ORDER BY id LIMIT :limit"
    rows = tx.all(
        sql,
        {"after_id": after_id, "limit": limit, "event_type": event_type, "agent_id": agent_id},
    )
    return [AuditEntry.from_row(r) for r in rows]


def latest(
    tx: Tx,
    *,
    limit: int = 50,
    after_id: int = 0,
    severities: tuple[Severity, ...] = (),
    event_types: tuple[str, ...] = (),
) -> list[AuditEntry]:
    """The newest entries first (a tail), after ``after_id``, optionally filtered."""
    sql = "SELECT * FROM audit_log WHERE id > :after_id"
    params: dict[str, Any] = {"after_id": after_id, "limit": limit}
    for column, values in (
        ("severity", [s.value for s in severities]),
        ("event_type", event_types),
    ):
        if values:
            names = [f"{column}_{i}" for i in range(len(values))]
            sql += f" AND {column} IN ({', '.join(':' + n for n in names)})"
            params.update(zip(names, values, strict=True))
    rows = tx.all(sql + " ORDER BY id DESC LIMIT :limit", params)
    return [AuditEntry.from_row(r) for r in rows]


def last_about(
    tx: Tx,
    *,
    agent_id: str | None = None,
    session_id: str | None = None,
    transaction_id: str | None = None,
) -> AuditEntry | None:
    """The newest entry about one agent, session or transaction (who changed it last)."""
    about = {"agent_id": agent_id, "session_id": session_id, "transaction_id": transaction_id}
    [(column, value)] = [(c, v) for c, v in about.items() if v is not None]
    row = tx.one(
        f"SELECT * FROM audit_log WHERE {column} = :value ORDER BY id DESC LIMIT 1",
        {"value": value},
    )
    return None if row is None else AuditEntry.from_row(row)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify` found: ``broken_at`` is None when the chain is intact."""

    entries: int
    head_id: int
    head_hash: str
    broken_at: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None and self.reason is None


def verify(tx: Tx, *, batch: int = 1000) -> ChainReport:
    """Recompute the chain from :data:`GENESIS`; the first link that does not hold, if any."""
    previous_hash, previous_id, count = GENESIS, 0, 0
    while True:
        rows = tx.all(
            "SELECT id, chain_hash, " + _COLUMNS + " FROM audit_log WHERE id > :after"
            " ORDER BY id LIMIT :limit",
            {"after": previous_id, "limit": batch},
        )
        for row in rows:
            expected = link(previous_hash, row["id"], payload(row))
            if row["chain_hash"] != expected:
                return ChainReport(
                    count,
                    previous_id,
                    previous_hash,
                    broken_at=row["id"],
                    reason="its hash does not follow from the previous entry and its content"
                    " (this entry, or one before it since the last good link, was changed,"
                    " removed or inserted)",
                )
            previous_hash, previous_id, count = expected, row["id"], count + 1
        if len(rows) < batch:
            break
    head = tx.one(HEAD_SQL, {"scope": CHAIN_SCOPE})
    if head is None or (head["last_id"], head["last_hash"]) != (previous_id, previous_hash):
        return ChainReport(
            count,
            previous_id,
            previous_hash,
            reason=f"the chain head ({head and head['last_id']}) does not match the last entry"
            f" ({previous_id}): entries were removed from the end, or the head was changed",
        )
    return ChainReport(count, previous_id, previous_hash)
