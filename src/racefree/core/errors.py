r"""The error catalog: every error racefree can answer with, as data.

There is one exception type, :class:`RacefreeError`, and it always carries a
:class:`Code`. Everything else about an error -- HTTP status, domain, whether a
retry can help, title, type URI -- is its :class:`ErrorSpec`, so a code means the
same thing in the library, over HTTP and in the CLI. This module is the
mechanism (and core's own GENERAL, LOCK and state-machine codes); each layer
declares its codes beside its code (``racefree.<layer>.errors``) and
:func:`register`\s them, and ``racefree.catalog`` assembles them all::

    RacefreeError(code)                       raised by core, domains, http
    |
    +-- GENERAL  VALIDATION_ERROR 400, NOT_FOUND 404, ROUTE_NOT_FOUND 404,
    |            METHOD_NOT_ALLOWED 405, PRECONDITION_FAILED 412, PAYLOAD_TOO_LARGE 413,
    |            PRECONDITION_REQUIRED 428, RATE_LIMITED 429, INTERNAL_ERROR 500,
    |            DATABASE_UNAVAILABLE 503
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


class Code(StrEnum):
    """A catalog code. Each layer declares its codes as a subclass and registers them.

    Members are their own names (``AgentCode.AGENT_SUSPENDED == "AGENT_SUSPENDED"``);
    a code is declared once, in the lowest layer that raises it.
    """


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """What a code means: the row of the catalog table."""

    code: Code
    status: int
    domain: str
    retryable: bool
    title: str
    detail: str

    @property
    def type_uri(self) -> str:
        return TYPE_URI_BASE + self.code.lower().replace("_", "-")


_REGISTRY: dict[str, ErrorSpec] = {}


def register(*specs: ErrorSpec) -> None:
    """Add a layer's codes to the catalog; every member of their enums needs a spec."""
    for spec in specs:
        known = _REGISTRY.get(spec.code.value)
        if known is not None and known != spec:  # pragma: no cover - a definition error
            raise RuntimeError(f"error code {spec.code.value} is declared twice")
        _REGISTRY[spec.code.value] = spec
    missing = {c.value for s in specs for c in type(s.code)} - set(_REGISTRY)
    if missing:  # pragma: no cover - a definition error, caught on import
        raise RuntimeError(f"error codes without a catalog entry: {sorted(missing)}")


def spec_of(code: str) -> ErrorSpec:
    """The spec of a registered code (``KeyError`` if no imported layer declares it)."""
    return _REGISTRY[code]


def find(code: str | None) -> ErrorSpec | None:
    """The spec of ``code`` if an imported layer declares it (e.g. a code read back from a row)."""
    return _REGISTRY.get(code) if code is not None else None


def registered() -> dict[Code, ErrorSpec]:
    """Every code registered so far; ``racefree.catalog`` imports every layer first."""
    return {spec.code: spec for spec in _REGISTRY.values()}


@dataclass(eq=False)
class RacefreeError(Exception):
    """An error from the catalog, with the specifics of this occurrence."""

    code: Code
    detail: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None
    retry_after: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.code, self.message)

    @property
    def spec(self) -> ErrorSpec:
        return spec_of(self.code)

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
    code: Code,
    *,
    detail: str | None = None,
    details: dict[str, Any] | None = None,
    hint: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Render an RFC 9457 problem document for ``code``."""
    spec = spec_of(code)
    body: dict[str, Any] = {
        "type": spec.type_uri,
        "title": spec.title,
        "status": spec.status,
        "detail": detail or spec.detail,
        "code": spec.code.value,
        "domain": spec.domain,
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
    return RacefreeError(GeneralCode.VALIDATION_ERROR, detail=detail, details={"issues": issues})


def invalid_field(field: str, msg: str, *, detail: str | None = None) -> RacefreeError:
    """400 ``VALIDATION_ERROR`` for one body field."""
    return validation_error([issue("body", field, msg=msg)], detail=detail)


# -- core's own codes ------------------------------------------------------------


class GeneralCode(Code):
    """Codes any layer may answer with."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    PRECONDITION_REQUIRED = "PRECONDITION_REQUIRED"
    RATE_LIMITED = "RATE_LIMITED"


register(
    ErrorSpec(
        GeneralCode.VALIDATION_ERROR,
        400,
        "GENERAL",
        False,
        "Validation error",
        "the request is not valid; details.issues says where",
    ),
    ErrorSpec(
        GeneralCode.NOT_FOUND,
        404,
        "GENERAL",
        False,
        "Not found",
        "the resource does not exist",
    ),
    ErrorSpec(
        GeneralCode.ROUTE_NOT_FOUND,
        404,
        "GENERAL",
        False,
        "Route not found",
        "no route matches this path",
    ),
    ErrorSpec(
        GeneralCode.METHOD_NOT_ALLOWED,
        405,
        "GENERAL",
        False,
        "Method not allowed",
        "this route does not accept that method",
    ),
    ErrorSpec(
        GeneralCode.PAYLOAD_TOO_LARGE,
        413,
        "GENERAL",
        False,
        "Payload too large",
        "the request body is larger than this server accepts",
    ),
    ErrorSpec(
        GeneralCode.RATE_LIMITED,
        429,
        "GENERAL",
        True,
        "Rate limited",
        "too many of these are open at once on this server; retry after Retry-After",
    ),
    ErrorSpec(
        GeneralCode.INTERNAL_ERROR,
        500,
        "GENERAL",
        True,
        "Internal error",
        "the server failed to handle the request; nothing was changed",
    ),
    ErrorSpec(
        GeneralCode.DATABASE_UNAVAILABLE,
        503,
        "GENERAL",
        True,
        "Database unavailable",
        (
            "the connection to the database was lost; the request may not have "
            "taken effect: retry it (writes with the same Idempotency-Key)"
        ),
    ),
    ErrorSpec(
        GeneralCode.PRECONDITION_FAILED,
        412,
        "GENERAL",
        False,
        "Precondition failed",
        (
            "the resource changed since the version in If-Match; nothing was "
            "changed; details.current_etag is the version now"
        ),
    ),
    ErrorSpec(
        GeneralCode.PRECONDITION_REQUIRED,
        428,
        "GENERAL",
        False,
        "Precondition required",
        "this server requires If-Match on changes: send the ETag you read",
    ),
)


class MachineCode(Code):
    """The state machine mechanism's refusal (its catalog domain is TX)."""

    INVALID_STATE_TRANSITION = "INVALID_STATE_TRANSITION"


register(
    ErrorSpec(
        MachineCode.INVALID_STATE_TRANSITION,
        409,
        "TX",
        False,
        "Invalid state transition",
        "the transaction is not in a state that allows this",
    ),
)


class IdempotencyCode(Code):
    """The Idempotency-Key mechanism's codes (their catalog domain is TX)."""

    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"
    IDEMPOTENCY_KEY_MISMATCH = "IDEMPOTENCY_KEY_MISMATCH"


register(
    ErrorSpec(
        IdempotencyCode.IDEMPOTENCY_KEY_IN_USE,
        409,
        "TX",
        True,
        "Idempotency key in use",
        "a request with this idempotency key is still in flight",
    ),
    ErrorSpec(
        IdempotencyCode.IDEMPOTENCY_KEY_MISMATCH,
        422,
        "TX",
        False,
        "Idempotency key mismatch",
        "the idempotency key was used with a different request body",
    ),
)


class LockCode(Code):
    """The lock mechanism's codes."""

    LOCK_TIMEOUT = "LOCK_TIMEOUT"
    LOCK_LOST = "LOCK_LOST"


register(
    ErrorSpec(
        LockCode.LOCK_TIMEOUT,
        409,
        "LOCK",
        True,
        "Lock timeout",
        "the lock was not free within the wait",
    ),
    ErrorSpec(
        LockCode.LOCK_LOST,
        409,
        "LOCK",
        False,
        "Lock lost",
        "the lease expired and another holder took the lock; nothing was written",
    ),
)
