"""The error catalog: every error racefree can answer with, as data.

There is one exception type, :class:`RacefreeError`, and it always carries an
:class:`ErrorCode`. Everything else about an error -- HTTP status, domain,
whether a retry can help, title, type URI -- is looked up in :data:`CATALOG`, so
a code means the same thing in the library, over HTTP and in the CLI::

    RacefreeError(code)                       raised by core, domains, http
    |
    +-- GENERAL  VALIDATION_ERROR 400, NOT_FOUND 404, ROUTE_NOT_FOUND 404,
    |            METHOD_NOT_ALLOWED 405, PRECONDITION_FAILED 412, PAYLOAD_TOO_LARGE 413,
    |            PRECONDITION_REQUIRED 428, INTERNAL_ERROR 500, DATABASE_UNAVAILABLE 503
    +-- AUTH     401 token and signature problems, FORBIDDEN 403,
    |            MASTER_PASSWORD_LOCKED 429
    +-- SYSTEM   SYSTEM_LOCKED 503, NOT_READY 503, kill switch conflicts 409
    +-- SESSION  renewal conflicts and guards, session limits
    +-- AGENT / OWNER / TX / PLAN / LOCK   per-domain codes

Rendering follows RFC 9457 (``application/problem+json``); see :func:`problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_URI_BASE = "https://racefree.dev/errors/"


class Domain(StrEnum):
    GENERAL = "GENERAL"
    AUTH = "AUTH"
    SYSTEM = "SYSTEM"
    SESSION = "SESSION"
    AGENT = "AGENT"
    OWNER = "OWNER"
    TX = "TX"
    PLAN = "PLAN"
    LOCK = "LOCK"
    EVENTS = "EVENTS"
    AUTO_STOP = "AUTO_STOP"


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    PRECONDITION_REQUIRED = "PRECONDITION_REQUIRED"
    AUTH_REQUIRED = "AUTH_REQUIRED"
    INVALID_TOKEN = "INVALID_TOKEN"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    SESSION_REVOKED = "SESSION_REVOKED"
    TOKEN_REUSED = "TOKEN_REUSED"
    INVALID_MASTER_PASSWORD = "INVALID_MASTER_PASSWORD"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    INVALID_NONCE = "INVALID_NONCE"
    FORBIDDEN = "FORBIDDEN"
    MASTER_PASSWORD_LOCKED = "MASTER_PASSWORD_LOCKED"
    OPERATOR_NOT_FOUND = "OPERATOR_NOT_FOUND"
    SYSTEM_LOCKED = "SYSTEM_LOCKED"
    NOT_READY = "NOT_READY"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    RENEWAL_CONFLICT = "RENEWAL_CONFLICT"
    RENEWAL_LIMIT_REACHED = "RENEWAL_LIMIT_REACHED"
    SESSION_ABSOLUTE_LIFETIME_EXCEEDED = "SESSION_ABSOLUTE_LIFETIME_EXCEEDED"
    SESSION_RENEWAL_MISMATCH = "SESSION_RENEWAL_MISMATCH"
    RENEWAL_TOO_EARLY = "RENEWAL_TOO_EARLY"
    SESSION_LIMIT_EXCEEDED = "SESSION_LIMIT_EXCEEDED"
    SESSION_ALREADY_REVOKED = "SESSION_ALREADY_REVOKED"
    KILL_SWITCH_ALREADY_ACTIVE = "KILL_SWITCH_ALREADY_ACTIVE"
    KILL_SWITCH_NOT_ACTIVE = "KILL_SWITCH_NOT_ACTIVE"
    RECOVERY_ALREADY_STARTED = "RECOVERY_ALREADY_STARTED"
    INVALID_RECOVERY_STATE = "INVALID_RECOVERY_STATE"
    RECOVERY_WAIT_REQUIRED = "RECOVERY_WAIT_REQUIRED"
    AGENT_NOT_FOUND = "AGENT_NOT_FOUND"
    AGENT_SUSPENDED = "AGENT_SUSPENDED"
    AGENT_TERMINATED = "AGENT_TERMINATED"
    OWNER_AUTH_REQUIRED = "OWNER_AUTH_REQUIRED"
    OWNER_LOCKED = "OWNER_LOCKED"
    OWNER_MISMATCH = "OWNER_MISMATCH"
    TX_NOT_FOUND = "TX_NOT_FOUND"
    INVALID_STATE_TRANSITION = "INVALID_STATE_TRANSITION"
    TX_ALREADY_PROCESSED = "TX_ALREADY_PROCESSED"
    TX_EXPIRED = "TX_EXPIRED"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"
    IDEMPOTENCY_KEY_MISMATCH = "IDEMPOTENCY_KEY_MISMATCH"
    EXECUTOR_UNAVAILABLE = "EXECUTOR_UNAVAILABLE"
    PLAN_GROUP_NOT_FOUND = "PLAN_GROUP_NOT_FOUND"
    PLAN_GENERATION_IN_PROGRESS = "PLAN_GENERATION_IN_PROGRESS"
    LOCK_TIMEOUT = "LOCK_TIMEOUT"
    LOCK_LOST = "LOCK_LOST"
    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
    AUTO_STOP_RULE_NOT_FOUND = "AUTO_STOP_RULE_NOT_FOUND"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """What a code means: the row of the catalog table."""

    code: ErrorCode
    status: int
    domain: Domain
    retryable: bool
    title: str
    detail: str

    @property
    def type_uri(self) -> str:
        return TYPE_URI_BASE + self.code.lower().replace("_", "-")


_C = ErrorCode
_D = Domain

#: The catalog, in the order of docs/errors.md.
CATALOG: dict[ErrorCode, ErrorSpec] = {
    s.code: s
    for s in (
        ErrorSpec(
            _C.VALIDATION_ERROR,
            400,
            _D.GENERAL,
            False,
            "Validation error",
            "the request is not valid; details.issues says where",
        ),
        ErrorSpec(_C.NOT_FOUND, 404, _D.GENERAL, False, "Not found", "the resource does not exist"),
        ErrorSpec(
            _C.ROUTE_NOT_FOUND,
            404,
            _D.GENERAL,
            False,
            "Route not found",
            "no route matches this path",
        ),
        ErrorSpec(
            _C.METHOD_NOT_ALLOWED,
            405,
            _D.GENERAL,
            False,
            "Method not allowed",
            "this route does not accept that method",
        ),
        ErrorSpec(
            _C.PAYLOAD_TOO_LARGE,
            413,
            _D.GENERAL,
            False,
            "Payload too large",
            "the request body is larger than this server accepts",
        ),
        ErrorSpec(
            _C.INTERNAL_ERROR,
            500,
            _D.GENERAL,
            True,
            "Internal error",
            "the server failed to handle the request; nothing was changed",
        ),
        ErrorSpec(
            _C.DATABASE_UNAVAILABLE,
            503,
            _D.GENERAL,
            True,
            "Database unavailable",
            "the connection to the database was lost; the request may not have taken effect:"
            " retry it (writes with the same Idempotency-Key)",
        ),
        ErrorSpec(
            _C.PRECONDITION_FAILED,
            412,
            _D.GENERAL,
            False,
            "Precondition failed",
            "the resource changed since the version in If-Match; nothing was changed;"
            " details.current_etag is the version now",
        ),
        ErrorSpec(
            _C.PRECONDITION_REQUIRED,
            428,
            _D.GENERAL,
            False,
            "Precondition required",
            "this server requires If-Match on changes: send the ETag you read",
        ),
        ErrorSpec(
            _C.AUTH_REQUIRED,
            401,
            _D.AUTH,
            False,
            "Authentication required",
            "this route needs credentials",
        ),
        ErrorSpec(
            _C.INVALID_TOKEN,
            401,
            _D.AUTH,
            False,
            "Invalid token",
            "the token is malformed or unknown",
        ),
        ErrorSpec(
            _C.TOKEN_EXPIRED, 401, _D.AUTH, False, "Token expired", "the session has expired"
        ),
        ErrorSpec(
            _C.SESSION_REVOKED, 401, _D.AUTH, False, "Session revoked", "the session was revoked"
        ),
        ErrorSpec(
            _C.TOKEN_REUSED,
            401,
            _D.AUTH,
            False,
            "Token reused",
            "a rotated-out token was presented again; the session is revoked",
        ),
        ErrorSpec(
            _C.INVALID_MASTER_PASSWORD,
            401,
            _D.AUTH,
            False,
            "Invalid master password",
            "the master password is wrong",
        ),
        ErrorSpec(
            _C.INVALID_SIGNATURE,
            401,
            _D.AUTH,
            False,
            "Invalid signature",
            "the owner signature does not verify",
        ),
        ErrorSpec(
            _C.INVALID_NONCE,
            401,
            _D.AUTH,
            False,
            "Invalid nonce",
            "the nonce is unknown, expired or already used",
        ),
        ErrorSpec(
            _C.FORBIDDEN, 403, _D.AUTH, False, "Forbidden", "these credentials may not do this"
        ),
        ErrorSpec(
            _C.MASTER_PASSWORD_LOCKED,
            429,
            _D.AUTH,
            False,
            "Master password locked",
            "too many wrong master passwords; wait for the lockout to end",
        ),
        ErrorSpec(
            _C.OPERATOR_NOT_FOUND,
            404,
            _D.AUTH,
            False,
            "Operator not found",
            "no operator token has this id",
        ),
        ErrorSpec(
            _C.SYSTEM_LOCKED,
            503,
            _D.SYSTEM,
            False,
            "System locked",
            "the kill switch is engaged; only recovery and read routes are served",
        ),
        ErrorSpec(
            _C.NOT_READY,
            503,
            _D.SYSTEM,
            True,
            "Not ready",
            "the database does not answer or its schema is not at this version's head",
        ),
        ErrorSpec(
            _C.SESSION_NOT_FOUND,
            404,
            _D.SESSION,
            False,
            "Session not found",
            "the session does not exist",
        ),
        ErrorSpec(
            _C.RENEWAL_CONFLICT,
            409,
            _D.SESSION,
            False,
            "Renewal conflict",
            "another request renewed this session first",
        ),
        ErrorSpec(
            _C.RENEWAL_LIMIT_REACHED,
            403,
            _D.SESSION,
            False,
            "Renewal limit reached",
            "the session has used all its renewals",
        ),
        ErrorSpec(
            _C.SESSION_ABSOLUTE_LIFETIME_EXCEEDED,
            403,
            _D.SESSION,
            False,
            "Session absolute lifetime exceeded",
            "renewing would carry the session past its absolute lifetime",
        ),
        ErrorSpec(
            _C.SESSION_RENEWAL_MISMATCH,
            403,
            _D.SESSION,
            False,
            "Session renewal mismatch",
            "the token belongs to another session",
        ),
        ErrorSpec(
            _C.RENEWAL_TOO_EARLY,
            403,
            _D.SESSION,
            True,
            "Renewal too early",
            "too little of the session's lifetime has passed to renew it",
        ),
        ErrorSpec(
            _C.SESSION_LIMIT_EXCEEDED,
            403,
            _D.SESSION,
            False,
            "Session limit exceeded",
            "the session's spending constraints do not admit this",
        ),
        ErrorSpec(
            _C.SESSION_ALREADY_REVOKED,
            409,
            _D.SESSION,
            False,
            "Session already revoked",
            "the session was revoked before",
        ),
        ErrorSpec(
            _C.KILL_SWITCH_ALREADY_ACTIVE,
            409,
            _D.SYSTEM,
            False,
            "Kill switch already active",
            "the kill switch is already engaged",
        ),
        ErrorSpec(
            _C.KILL_SWITCH_NOT_ACTIVE,
            409,
            _D.SYSTEM,
            False,
            "Kill switch not active",
            "the kill switch is not engaged",
        ),
        ErrorSpec(
            _C.RECOVERY_ALREADY_STARTED,
            409,
            _D.SYSTEM,
            False,
            "Recovery already started",
            "another request started recovery first",
        ),
        ErrorSpec(
            _C.INVALID_RECOVERY_STATE,
            409,
            _D.SYSTEM,
            False,
            "Invalid recovery state",
            "the kill switch is not recovering",
        ),
        ErrorSpec(
            _C.RECOVERY_WAIT_REQUIRED,
            409,
            _D.SYSTEM,
            True,
            "Recovery wait required",
            "recovery cannot complete before recovery_eligible_at",
        ),
        ErrorSpec(
            _C.AGENT_NOT_FOUND, 404, _D.AGENT, False, "Agent not found", "the agent does not exist"
        ),
        ErrorSpec(
            _C.AGENT_SUSPENDED, 409, _D.AGENT, False, "Agent suspended", "the agent is suspended"
        ),
        ErrorSpec(
            _C.AGENT_TERMINATED,
            410,
            _D.AGENT,
            False,
            "Agent terminated",
            "the agent was terminated",
        ),
        ErrorSpec(
            _C.OWNER_AUTH_REQUIRED,
            401,
            _D.OWNER,
            False,
            "Owner authentication required",
            "this action needs the owner's signature",
        ),
        ErrorSpec(
            _C.OWNER_LOCKED,
            403,
            _D.OWNER,
            False,
            "Owner locked",
            "ownership is locked in and cannot be removed",
        ),
        ErrorSpec(
            _C.OWNER_MISMATCH,
            403,
            _D.OWNER,
            False,
            "Owner mismatch",
            "the signature is not from the agent's owner",
        ),
        ErrorSpec(
            _C.TX_NOT_FOUND,
            404,
            _D.TX,
            False,
            "Transaction not found",
            "the transaction does not exist",
        ),
        ErrorSpec(
            _C.INVALID_STATE_TRANSITION,
            409,
            _D.TX,
            False,
            "Invalid state transition",
            "the transaction is not in a state that allows this",
        ),
        ErrorSpec(
            _C.TX_ALREADY_PROCESSED,
            409,
            _D.TX,
            False,
            "Transaction already processed",
            "another request processed this transaction first",
        ),
        ErrorSpec(
            _C.TX_EXPIRED,
            410,
            _D.TX,
            False,
            "Transaction expired",
            "the transaction expired before it was processed",
        ),
        ErrorSpec(
            _C.INSUFFICIENT_BALANCE,
            400,
            _D.TX,
            False,
            "Insufficient balance",
            "the account balance does not cover the amount",
        ),
        ErrorSpec(
            _C.IDEMPOTENCY_KEY_IN_USE,
            409,
            _D.TX,
            True,
            "Idempotency key in use",
            "a request with this idempotency key is still in flight",
        ),
        ErrorSpec(
            _C.IDEMPOTENCY_KEY_MISMATCH,
            422,
            _D.TX,
            False,
            "Idempotency key mismatch",
            "the idempotency key was used with a different request body",
        ),
        ErrorSpec(
            _C.EXECUTOR_UNAVAILABLE,
            503,
            _D.TX,
            True,
            "Executor unavailable",
            "the executor cannot take work right now",
        ),
        ErrorSpec(
            _C.PLAN_GROUP_NOT_FOUND,
            404,
            _D.PLAN,
            False,
            "Plan group not found",
            "the plan group does not exist",
        ),
        ErrorSpec(
            _C.PLAN_GENERATION_IN_PROGRESS,
            409,
            _D.PLAN,
            True,
            "Plan generation in progress",
            "another request is generating this plan group's plans",
        ),
        ErrorSpec(
            _C.LOCK_TIMEOUT,
            409,
            _D.LOCK,
            True,
            "Lock timeout",
            "the lock was not free within the wait",
        ),
        ErrorSpec(
            _C.LOCK_LOST,
            409,
            _D.LOCK,
            False,
            "Lock lost",
            "the lease expired and another holder took the lock; nothing was written",
        ),
        ErrorSpec(
            _C.WEBHOOK_NOT_FOUND,
            404,
            _D.EVENTS,
            False,
            "Webhook not found",
            "the webhook does not exist",
        ),
        ErrorSpec(
            _C.AUTO_STOP_RULE_NOT_FOUND,
            404,
            _D.AUTO_STOP,
            False,
            "Auto-stop rule not found",
            "the auto-stop rule does not exist",
        ),
        ErrorSpec(
            _C.QUOTA_EXCEEDED,
            403,
            _D.GENERAL,
            False,
            "Quota exceeded",
            "a configured quota does not admit this (details: quota, limit)",
        ),
    )
}

_missing = set(ErrorCode) - set(CATALOG)
if _missing:  # pragma: no cover - a definition error, caught on import
    raise RuntimeError(f"error codes without a catalog entry: {sorted(_missing)}")


@dataclass(eq=False)
class RacefreeError(Exception):
    """An error from the catalog, with the specifics of this occurrence."""

    code: ErrorCode
    detail: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None
    retry_after: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.code, self.message)

    @property
    def spec(self) -> ErrorSpec:
        return CATALOG[self.code]

    @property
    def status(self) -> int:
        return self.spec.status

    @property
    def retryable(self) -> bool:
        return self.spec.retryable

    @property
    def message(self) -> str:
        return self.detail or self.spec.detail

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(0, int(self.retry_after)))}

    def to_problem(self, request_id: str | None = None) -> dict[str, Any]:
        return problem(
            self.code,
            detail=self.message,
            details=self.details,
            hint=self.hint,
            request_id=request_id,
        )


def problem(
    code: ErrorCode,
    *,
    detail: str | None = None,
    details: dict[str, Any] | None = None,
    hint: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Render an RFC 9457 problem document for ``code``."""
    spec = CATALOG[code]
    body: dict[str, Any] = {
        "type": spec.type_uri,
        "title": spec.title,
        "status": spec.status,
        "detail": detail or spec.detail,
        "code": spec.code.value,
        "domain": spec.domain.value,
        "retryable": spec.retryable,
        "request_id": request_id,
        "details": details or {},
    }
    if hint:
        body["hint"] = hint
    return body


def issue(*loc: str, msg: str, type: str = "value_error") -> dict[str, Any]:
    """One entry of ``details.issues`` (the shape FastAPI's own 400s use)."""
    return {"loc": list(loc), "msg": msg, "type": type}


def validation_error(issues: list[dict[str, Any]], *, detail: str | None = None) -> RacefreeError:
    """400 ``VALIDATION_ERROR`` with ``details.issues``: the one builder every layer uses."""
    return RacefreeError(ErrorCode.VALIDATION_ERROR, detail=detail, details={"issues": issues})


def invalid_field(field: str, msg: str, *, detail: str | None = None) -> RacefreeError:
    """400 ``VALIDATION_ERROR`` for one body field."""
    return validation_error([issue("body", field, msg=msg)], detail=detail)
