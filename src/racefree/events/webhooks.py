"""Webhooks: where events go (the ``webhooks`` table), and their delivery history.

A webhook has a target URL, the event types it wants (``["*"]`` for all), an
encrypted signing secret (:mod:`.secrets`; shown once, at creation), a status
``ACTIVE | DISABLED`` and a ``version`` for ``If-Match``. Its outbox cursor
(``cursor_txid, cursor_id``) is the last event it has handled; it starts at the
outbox head when the webhook is created (events from then on), and only the
deliverer moves it (:mod:`.delivery`), after a 2xx, in a CAS fenced by its lease.

Changes are CAS on ``id`` (and ``version`` when the caller sent ``If-Match``),
classified after a miss: 404 ``WEBHOOK_NOT_FOUND`` or 412 ``PRECONDITION_FAILED``.
Each writes its audit row (an event itself) in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from racefree.core import audit, conditional
from racefree.core.audit import Severity
from racefree.core.clock import isoformat
from racefree.core.condition import Condition
from racefree.core.conditional import Precondition
from racefree.core.db import Row, Tx
from racefree.core.errors import RacefreeError
from racefree.core.ids import new_id
from racefree.events import outbox, signing
from racefree.events.errors import EventCode
from racefree.events.outbox import Position
from racefree.events.secrets import SecretBox

ACTIVE = "ACTIVE"
DISABLED = "DISABLED"
STATUSES = (ACTIVE, DISABLED)
ALL_TYPES = "*"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    event_types: tuple[str, ...]
    status: str
    version: int
    cursor: Position
    failures: int
    next_attempt_at_ms: int
    disabled_reason: str | None
    created_at: int
    updated_at: int
    sealed_secret: str

    @classmethod
    def from_row(cls, row: Row) -> Webhook:
        return cls(
            id=row["id"],
            url=row["url"],
            event_types=tuple(json.loads(row["event_types"])),
            status=row["status"],
            version=int(row["version"]),
            cursor=Position(int(row["cursor_txid"]), int(row["cursor_id"])),
            failures=int(row["failures"]),
            next_attempt_at_ms=int(row["next_attempt_at_ms"]),
            disabled_reason=row["disabled_reason"],
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
            sealed_secret=row["secret"],
        )

    def public(self) -> dict[str, Any]:
        """What the API and the CLI show (never the secret)."""
        next_at = self.next_attempt_at_ms // 1000 if self.next_attempt_at_ms else None
        return {
            "id": self.id,
            "url": self.url,
            "event_types": list(self.event_types),
            "status": self.status,
            "version": self.version,
            "failures": self.failures,
            "next_attempt_at": isoformat(next_at),
            "disabled_reason": self.disabled_reason,
            "created_at": isoformat(self.created_at),
            "created_at_epoch": self.created_at,
            "updated_at": isoformat(self.updated_at),
            "updated_at_epoch": self.updated_at,
            "last_event_id": self.cursor.id,
        }

    @property
    def types_filter(self) -> tuple[str, ...] | None:
        """The outbox filter: None when every type is wanted."""
        return None if ALL_TYPES in self.event_types else self.event_types


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook_id: str
    event_id: int
    event_type: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: int
    holder: str
    started_at_ms: int

    @classmethod
    def from_row(cls, row: Row) -> Delivery:
        return cls(**{k: row[k] for k in cls.__slots__})


def _not_found(webhook_id: str) -> RacefreeError:
    return RacefreeError(
        EventCode.WEBHOOK_NOT_FOUND,
        detail=f"no webhook {webhook_id}",
        details={"webhook_id": webhook_id},
    )


def _classify(tx: Tx, webhook_id: str) -> RacefreeError:
    return conditional.miss(tx, "webhooks", webhook_id, _not_found(webhook_id))


def create(
    tx: Tx,
    box: SecretBox,
    *,
    url: str,
    event_types: list[str],
    now: int,
    actor: str | None,
) -> tuple[Webhook, str]:
    """A new ACTIVE webhook receiving events from now on; returns it and its secret."""
    webhook_id = new_id()
    secret = signing.new_secret()
    start = outbox.head(tx)
    row = tx.one(
        "INSERT INTO webhooks (id, url, event_types, secret, status, version, cursor_txid,"
        " cursor_id, failures, next_attempt_at_ms, created_at, updated_at)"
        " VALUES (:id, :url, :types, :secret, 'ACTIVE', 1, :txid, :cid, 0, 0, :now, :now)"
        " RETURNING *",
        {
            "id": webhook_id,
            "url": url,
            "types": json.dumps(event_types),
            "secret": box.seal(secret, webhook_id),
            "txid": start.txid,
            "cid": start.id,
            "now": now,
        },
    )
    assert row is not None
    audit.record(
        tx,
        "WEBHOOK_CREATED",
        at=now,
        actor=actor,
        details={"webhook_id": webhook_id, "url": url, "event_types": event_types},
    )
    return Webhook.from_row(row), secret


def get(tx: Tx, webhook_id: str) -> Webhook:
    row = tx.one("SELECT * FROM webhooks WHERE id = :id", {"id": webhook_id})
    if row is None:
        raise _not_found(webhook_id)
    return Webhook.from_row(row)


def list_all(tx: Tx) -> list[Webhook]:
    return [Webhook.from_row(r) for r in tx.all("SELECT * FROM webhooks ORDER BY id")]


#: ``racefree_outbox_lag_events`` counts up to this many: ``/metrics`` needs no token, so
#: each scrape's count is bounded (an index range of at most this many rows per webhook)
LAG_CAP = 100_000


def lag(tx: Tx) -> int:
    """Events committed but not yet delivered: how far the furthest-behind webhook is.

    For each ACTIVE webhook, the committed events of the types it wants that
    come after its cursor (the cursor moves only after a receiver's 2xx); the
    largest of those counts, capped at :data:`LAG_CAP`; 0 without an ACTIVE
    webhook. A DISABLED webhook is not counted: nothing is delivered to it
    until an operator enables it again (its disabling wrote ``WEBHOOK_DISABLED``).
    """
    worst = 0
    rows = tx.all(
        "SELECT cursor_txid, cursor_id, event_types FROM webhooks WHERE status = :active",
        {"active": ACTIVE},
    )
    for row in rows:
        types = json.loads(row["event_types"])
        behind = outbox.count_after(
            tx,
            Position(int(row["cursor_txid"]), int(row["cursor_id"])),
            types=None if ALL_TYPES in types else types,
            cap=LAG_CAP,
        )
        worst = max(worst, behind)
    return worst


def update(
    tx: Tx,
    webhook_id: str,
    *,
    now: int,
    actor: str | None,
    expected: Precondition | None = None,
    url: str | None = None,
    event_types: list[str] | None = None,
    status: str | None = None,
) -> Webhook:
    """Change a webhook (CAS on id and, with If-Match, version); re-enabling resets failures."""
    sets = ["version = version + 1", "updated_at = :now"]
    params: dict[str, Any] = {"id": webhook_id, "now": now}
    changed: dict[str, Any] = {}
    if url is not None:
        sets.append("url = :url")
        params["url"] = changed["url"] = url
    if event_types is not None:
        sets.append("event_types = :types")
        params["types"] = json.dumps(event_types)
        changed["event_types"] = event_types
    if status is not None:
        sets.append("status = :status")
        params["status"] = changed["status"] = status
        if status == ACTIVE:  # a fresh start: the next attempt is now, counting from zero
            sets += ["failures = 0", "next_attempt_at_ms = 0", "disabled_reason = NULL"]
        else:
            sets.append("disabled_reason = 'disabled by an operator'")
    where = conditional.where(expected, params)
    row = tx.one(f"UPDATE webhooks SET {', '.join(sets)} WHERE {where} RETURNING *", params)
    if row is None:
        raise _classify(tx, webhook_id)
    audit.record(
        tx,
        "WEBHOOK_UPDATED",
        at=now,
        actor=actor,
        details={"webhook_id": webhook_id, **changed},
    )
    return Webhook.from_row(row)


def delete(
    tx: Tx, webhook_id: str, *, now: int, actor: str | None, expected: Precondition | None = None
) -> None:
    """Remove a webhook and its delivery history (CAS; a deliverer mid-way stops at its CAS)."""
    params: dict[str, Any] = {"id": webhook_id}
    where = conditional.where(expected, params)
    # lock the row first (the CAS), so the history is deleted only by the winner
    row = tx.one(f"UPDATE webhooks SET version = version + 1 WHERE {where} RETURNING url", params)
    if row is None:
        raise _classify(tx, webhook_id)
    tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = :id", params)
    tx.execute("DELETE FROM webhooks WHERE id = :id", params)
    audit.record(
        tx,
        "WEBHOOK_DELETED",
        at=now,
        actor=actor,
        details={"webhook_id": webhook_id, "url": row["url"]},
    )


def deliveries(
    tx: Tx, webhook_id: str, *, limit: int = 100, before: str | None = None
) -> list[Delivery]:
    """Newest first; page with ``before`` (a delivery id)."""
    get(tx, webhook_id)  # 404 for an unknown webhook, not an empty list
    sql = "SELECT * FROM webhook_deliveries WHERE webhook_id = :id"
    if before is not None:
        sql += " AND id < :before"
    sql += " ORDER BY id DESC LIMIT :limit"
    rows = tx.all(sql, {"id": webhook_id, "before": before, "limit": limit})
    return [Delivery.from_row(r) for r in rows]


def recent(tx: Tx, webhook_ids: Sequence[str], *, limit: int) -> dict[str, list[Delivery]]:
    """The newest ``limit`` deliveries of each of ``webhook_ids`` (newest first), in one
    statement: a ``UNION ALL`` of one index range (``webhook_id, id``) per webhook, so a
    list of webhooks costs one round trip and reads at most ``limit`` rows of each."""
    found: dict[str, list[Delivery]] = {webhook_id: [] for webhook_id in webhook_ids}
    if not webhook_ids:
        return found
    params: dict[str, Any] = {"limit": limit}
    ranges = []
    for i, webhook_id in enumerate(webhook_ids):
        params[f"w{i}"] = webhook_id
        ranges.append(
            f"SELECT * FROM (SELECT * FROM webhook_deliveries WHERE webhook_id = :w{i}"
            f" ORDER BY id DESC LIMIT :limit) AS d{i}"
        )
    for row in tx.all(" UNION ALL ".join(ranges), params):
        delivery = Delivery.from_row(row)
        found[delivery.webhook_id].append(delivery)
    for each in found.values():
        each.sort(key=lambda d: d.id, reverse=True)  # UNION ALL keeps no order
    return found


# -- the deliverer's writes (CAS on the cursor it read, fenced by its lease) -----------------


def _at(webhook_id: str, cursor: Position, guard: Condition) -> Condition:
    """The webhook still ACTIVE with its cursor where the deliverer read it, and ``guard``."""
    return (
        Condition.of(
            "id = :id AND status = 'ACTIVE' AND cursor_txid = :txid AND cursor_id = :cid",
            id=webhook_id,
            txid=cursor.txid,
            cid=cursor.id,
        )
        & guard
    )


def advance(tx: Tx, webhook_id: str, cursor: Position, to: Position, guard: Condition) -> bool:
    """Move the cursor from ``cursor`` to ``to`` (a success resets the failure count).

    False when the webhook was deleted, disabled or moved by someone else, or
    the lease in ``guard`` is no longer ours: the caller stops.
    """
    where = _at(webhook_id, cursor, guard)
    return bool(
        tx.execute(
            "UPDATE webhooks SET cursor_txid = :to_txid, cursor_id = :to_id, failures = 0,"
            f" next_attempt_at_ms = 0 WHERE {where.sql}",
            where.bind({"to_txid": to.txid, "to_id": to.id}),
        )
    )


@dataclass(frozen=True, slots=True)
class Failure:
    failures: int
    disabled: bool


def fail(
    tx: Tx,
    webhook_id: str,
    cursor: Position,
    guard: Condition,
    *,
    next_attempt_at_ms: int,
    max_attempts: int,
    reason: str,
    now: int,
) -> Failure | None:
    """Count a failed attempt; the one that reaches ``max_attempts`` disables the webhook.

    The count is incremented in SQL and the crossing read from the UPDATE's
    RETURNING, so exactly one attempt disables it and writes ``WEBHOOK_DISABLED``.
    None when the CAS missed (see :func:`advance`).
    """
    where = _at(webhook_id, cursor, guard)
    row = tx.one(
        "UPDATE webhooks SET failures = failures + 1, next_attempt_at_ms = :next,"
        " status = CASE WHEN failures + 1 >= :max THEN 'DISABLED' ELSE status END,"
        " disabled_reason = CASE WHEN failures + 1 >= :max THEN :reason"
        " ELSE disabled_reason END,"
        " version = CASE WHEN failures + 1 >= :max THEN version + 1 ELSE version END"
        f" WHERE {where.sql} RETURNING failures, status, url",
        where.bind({"next": next_attempt_at_ms, "max": max_attempts, "reason": reason}),
    )
    if row is None:
        return None
    disabled = row["status"] == DISABLED
    if disabled:
        audit.record(
            tx,
            "WEBHOOK_DISABLED",
            at=now,
            severity=Severity.WARNING,
            actor="webhook_deliverer",
            details={
                "webhook_id": webhook_id,
                "url": row["url"],
                "failures": int(row["failures"]),
                "reason": reason,
            },
        )
    return Failure(int(row["failures"]), disabled)


def record_delivery(tx: Tx, delivery: Delivery) -> None:
    tx.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, attempt, outcome,"
        " status_code, error, duration_ms, holder, started_at_ms) VALUES (:id, :webhook_id,"
        " :event_id, :event_type, :attempt, :outcome, :status_code, :error, :duration_ms,"
        " :holder, :started_at_ms)",
        {k: getattr(delivery, k) for k in Delivery.__slots__},
    )


def unchanged(tx: Tx, webhook_id: str, version: int) -> bool:
    """The webhook is still ACTIVE at ``version`` (not disabled, deleted or edited since)."""
    row = tx.one(
        "SELECT 1 AS still FROM webhooks WHERE id = :id AND status = 'ACTIVE'"
        " AND version = :version",
        {"id": webhook_id, "version": version},
    )
    return row is not None


def due(tx: Tx, now_ms: int) -> list[str]:
    """ACTIVE webhooks whose next attempt is due (each may or may not have new events)."""
    rows = tx.all(
        "SELECT id FROM webhooks WHERE status = 'ACTIVE' AND next_attempt_at_ms <= :now"
        " ORDER BY id",
        {"now": now_ms},
    )
    return [r["id"] for r in rows]
