"""The append-only audit log.

Rows are written with :func:`record` inside the transaction of the change they
describe, so a change and its audit row commit or vanish together. The database
itself refuses UPDATE and DELETE on ``audit_log`` (triggers created by the
first migration); on PostgreSQL TRUNCATE is refused too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from racefree.core import context
from racefree.core.db import Row, Tx


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


_INSERT = (
    "INSERT INTO audit_log (at, event_type, severity, actor, agent_id, session_id,"
    " transaction_id, details, request_id) VALUES (:at, :event_type, :severity, :actor,"
    " :agent_id, :session_id, :transaction_id, :details, :request_id)"
)


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
) -> None:
    """Append one audit row in ``tx`` (with ``via`` when the change came through the console)."""
    tx.execute(
        _INSERT,
        row(
            event_type,
            at=at,
            severity=severity,
            actor=actor,
            agent_id=agent_id,
            session_id=session_id,
            transaction_id=transaction_id,
            details=details,
        ),
    )


#: The columns of one audit row, in the order of :func:`row`'s keys.
COLUMNS = (
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
    """The values :func:`record` inserts (for a statement that writes several rows at once)."""
    extra = {"client_request_id": context.client_request_id.get(), "via": context.via.get()}
    extra = {k: v for k, v in extra.items() if v is not None}
    if extra:
        details = {**(details or {}), **extra}
    return {
        "at": at,
        "event_type": event_type,
        "severity": severity.value,
        "actor": actor,
        "agent_id": agent_id,
        "session_id": session_id,
        "transaction_id": transaction_id,
        "details": json.dumps(details or {}, separators=(",", ":"), sort_keys=True),
        "request_id": context.request_id.get(),
    }


def record_each(
    tx: Tx,
    event_type: str,
    rows: str,
    params: dict[str, Any],
    *,
    at: int,
    severity: Severity = Severity.INFO,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one audit row per row of ``rows`` (set-based: one INSERT ... SELECT).

    ``rows`` is a FROM item (a table, a CTE name or ``(SELECT ...) AS x``)
    with columns ``agent_id``, ``session_id`` and ``transaction_id``; every
    row gets the same event, actor and details. Returns how many were written.
    """
    return tx.execute(
        each_sql(rows), {**params, **each_params(event_type, at, severity, actor, details)}
    )


def each_sql(rows: str) -> str:
    """The INSERT of :func:`record_each`, for embedding (e.g. in a PostgreSQL CTE)."""
    return (
        "INSERT INTO audit_log (at, event_type, severity, actor, agent_id, session_id,"
        " transaction_id, details, request_id) SELECT :audit_at, :audit_event_type,"
        " :audit_severity, :audit_actor, agent_id, session_id, transaction_id,"
        f" :audit_details, :audit_request_id FROM {rows}"
    )


def each_params(
    event_type: str,
    at: int,
    severity: Severity = Severity.INFO,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "audit_at": at,
        "audit_event_type": event_type,
        "audit_severity": severity.value,
        "audit_actor": actor,
        "audit_details": json.dumps(details or {}, separators=(",", ":"), sort_keys=True),
        "audit_request_id": context.request_id.get(),
    }


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
