"""Sessions as the API shows them, their policy, and their spending constraints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from racefree.core import amounts
from racefree.core.db import Row
from racefree.core.errors import issue, validation_error
from racefree.sessions.settings import SessionSettings

#: Columns of a session that are safe to show (never the token hashes).
PUBLIC_COLUMNS = (
    "id, agent_id, expires_at, expires_in, absolute_expires_at, renewal_count, max_renewals,"
    " last_renewed_at, revoked_at, revoke_reason, constraints, spent, reserved, tx_count,"
    " created_at"
)

#: the prefix of every session token
SESSION_PREFIX = "rf_sess_"


@dataclass(frozen=True, slots=True)
class Policy:
    """Session defaults and renewal rules (docs/state-machines.md, docs/settings.md)."""

    expires_in: int = 86400
    max_renewals: int = 30
    absolute_lifetime: int = 2_592_000
    #: Fraction of ``expires_in`` that must pass between renewals.
    min_elapsed: float = 0.5
    #: Seconds after a renewal during which its previous token fetches the same successor.
    grace_s: int = 0

    @classmethod
    def from_settings(cls, settings: SessionSettings) -> Policy:
        return cls(
            expires_in=settings.session_expires_in,
            max_renewals=settings.session_max_renewals,
            absolute_lifetime=settings.session_absolute_lifetime,
            min_elapsed=settings.session_renewal_min_elapsed,
            grace_s=settings.session_renewal_grace_s,
        )

    @property
    def min_elapsed_ppm(self) -> int:
        """``min_elapsed`` in parts per million, so SQL compares integers on both engines."""
        return round(self.min_elapsed * 1_000_000)


@dataclass(frozen=True, slots=True)
class Constraints:
    """Spending limits of a session; None means unlimited.

    Stored in ``sessions.constraints`` as JSON with integer values (minor
    units) and only the limits that are set, e.g. ``{"max_total_amount": 5000}``.
    The transactions domain reads that JSON; reservations are
    ``sessions.reserved`` / ``spent`` / ``tx_count``.
    """

    max_amount_per_tx: int | None = None
    max_total_amount: int | None = None
    max_transactions: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> Constraints:
        """Validate API input: amounts are strings of integers, counts integers, all >= 0."""
        raw = raw or {}
        issues = [
            _issue(key, "unknown constraint")
            for key in raw
            if key not in ("max_amount_per_tx", "max_total_amount", "max_transactions")
        ]
        values: dict[str, int | None] = {}
        for key in ("max_amount_per_tx", "max_total_amount"):
            values[key] = _amount(raw.get(key), key, issues)
        values["max_transactions"] = _count(raw.get("max_transactions"), issues)
        if issues:
            raise validation_error(issues)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str | None) -> Constraints:
        return cls(**json.loads(text)) if text else cls()

    def to_json(self) -> str | None:
        stored = {k: v for k, v in self.as_dict().items() if v is not None}
        return json.dumps(stored, sort_keys=True, separators=(",", ":")) if stored else None

    def as_dict(self) -> dict[str, int | None]:
        return {
            "max_amount_per_tx": self.max_amount_per_tx,
            "max_total_amount": self.max_total_amount,
            "max_transactions": self.max_transactions,
        }

    def for_api(self) -> dict[str, Any]:
        """Amounts as strings of integers (docs/http-api.md)."""
        return {
            "max_amount_per_tx": _str_or_none(self.max_amount_per_tx),
            "max_total_amount": _str_or_none(self.max_total_amount),
            "max_transactions": self.max_transactions,
        }


def _issue(key: str, message: str) -> dict[str, Any]:
    return issue("body", "constraints", key, msg=message)


def _amount(value: Any, key: str, issues: list[dict[str, Any]]) -> int | None:
    if value is None:
        return None
    if not amounts.is_amount(value):
        issues.append(_issue(key, amounts.RANGE_MESSAGE))
        return None
    return int(value)


def _count(value: Any, issues: list[dict[str, Any]]) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**31 - 1:
        issues.append(_issue("max_transactions", "a non-negative integer"))
        return None
    return value


def _str_or_none(value: int | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Session:
    """A session without its secrets."""

    id: str
    agent_id: str
    expires_at: int
    expires_in: int
    absolute_expires_at: int
    renewal_count: int
    max_renewals: int
    last_renewed_at: int | None
    revoked_at: int | None
    revoke_reason: str | None
    constraints: Constraints
    spent: int
    reserved: int
    tx_count: int
    created_at: int

    @classmethod
    def from_row(cls, row: Row) -> Session:
        """From a row holding at least :data:`PUBLIC_COLUMNS` (other keys are ignored)."""
        fields = {name: row[name] for name in _SESSION_FIELDS}
        return cls(**{**fields, "constraints": Constraints.from_json(row["constraints"])})

    def active(self, now: int) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A session and its token: the only place the raw token ever appears."""

    session: Session
    token: str


_SESSION_FIELDS = tuple(c.strip() for c in PUBLIC_COLUMNS.split(","))
