"""The error catalog: core.errors' mechanism and every layer's codes, as docs/errors.md says."""

from __future__ import annotations

import pytest

from racefree.catalog import CATALOG
from racefree.core.errors import RacefreeError, problem
from racefree.sessions.errors import SessionCode

# (code, HTTP status, domain, retryable) exactly as the contract's table states them.
CONTRACT = [
    ("VALIDATION_ERROR", 400, "GENERAL", False),
    ("PAYLOAD_TOO_LARGE", 413, "GENERAL", False),  # the edge limits (docs/operations.md)
    ("NOT_FOUND", 404, "GENERAL", False),
    ("ROUTE_NOT_FOUND", 404, "GENERAL", False),
    ("INTERNAL_ERROR", 500, "GENERAL", True),
    *[
        (c, 401, "AUTH", False)
        for c in (
            "AUTH_REQUIRED",
            "INVALID_TOKEN",
            "TOKEN_EXPIRED",
            "SESSION_REVOKED",
            "TOKEN_REUSED",
            "INVALID_MASTER_PASSWORD",
            "INVALID_SIGNATURE",
            "INVALID_NONCE",
        )
    ],
    ("FORBIDDEN", 403, "AUTH", False),
    ("MASTER_PASSWORD_LOCKED", 429, "AUTH", False),
    ("SYSTEM_LOCKED", 503, "SYSTEM", False),
    ("SESSION_NOT_FOUND", 404, "SESSION", False),
    ("RENEWAL_CONFLICT", 409, "SESSION", False),
    *[
        (c, 403, "SESSION", False)
        for c in (
            "RENEWAL_LIMIT_REACHED",
            "SESSION_ABSOLUTE_LIFETIME_EXCEEDED",
            "SESSION_RENEWAL_MISMATCH",
        )
    ],
    ("RENEWAL_TOO_EARLY", 403, "SESSION", True),
    ("SESSION_LIMIT_EXCEEDED", 403, "SESSION", False),
    ("SESSION_ALREADY_REVOKED", 409, "SESSION", False),
    *[
        (c, 409, "SYSTEM", False)
        for c in (
            "KILL_SWITCH_ALREADY_ACTIVE",
            "KILL_SWITCH_NOT_ACTIVE",
            "RECOVERY_ALREADY_STARTED",
            "INVALID_RECOVERY_STATE",
        )
    ],
    ("RECOVERY_WAIT_REQUIRED", 409, "SYSTEM", True),
    ("AGENT_NOT_FOUND", 404, "AGENT", False),
    ("AGENT_SUSPENDED", 409, "AGENT", False),
    ("AGENT_TERMINATED", 410, "AGENT", False),
    ("OWNER_AUTH_REQUIRED", 401, "OWNER", False),
    ("OWNER_LOCKED", 403, "OWNER", False),
    ("OWNER_MISMATCH", 403, "OWNER", False),
    ("TX_NOT_FOUND", 404, "TX", False),
    ("INVALID_STATE_TRANSITION", 409, "TX", False),
    ("TX_ALREADY_PROCESSED", 409, "TX", False),
    ("TX_EXPIRED", 410, "TX", False),
    ("INSUFFICIENT_BALANCE", 400, "TX", False),
    ("IDEMPOTENCY_KEY_IN_USE", 409, "TX", True),
    ("IDEMPOTENCY_KEY_MISMATCH", 422, "TX", False),
    ("EXECUTOR_UNAVAILABLE", 503, "TX", True),
    ("PLAN_GROUP_NOT_FOUND", 404, "PLAN", False),
    ("PLAN_GENERATION_IN_PROGRESS", 409, "PLAN", True),
    ("LOCK_TIMEOUT", 409, "LOCK", True),
    ("LOCK_LOST", 409, "LOCK", False),
    # conditional requests, webhooks, auto-stop rules (issue 12)
    ("PRECONDITION_FAILED", 412, "GENERAL", False),
    ("WEBHOOK_NOT_FOUND", 404, "EVENTS", False),
    ("AUTO_STOP_RULE_NOT_FOUND", 404, "AUTO_STOP", False),
    # the HTTP contract's other new codes (issue 15, DESIGN 10/11)
    ("PRECONDITION_REQUIRED", 428, "GENERAL", False),
    ("OPERATOR_NOT_FOUND", 404, "AUTH", False),
    ("RATE_LIMITED", 429, "GENERAL", True),  # an event stream past RACEFREE_EVENTS_MAX_STREAMS
]


@pytest.mark.parametrize(("code", "status", "domain", "retryable"), CONTRACT)
def test_catalog_matches_the_contract(code: str, status: int, domain: str, retryable: bool) -> None:
    spec = CATALOG[code]
    assert (spec.status, spec.domain, spec.retryable) == (status, domain, retryable)


def test_every_code_beyond_the_contract_is_a_deliberate_addition() -> None:
    # NOT_READY: /readyz's 503 (problem+json; the contract names no code for it)
    # QUOTA_EXCEEDED: issue 9 (plan-group and generation-size quotas)
    assert {c.value for c in CATALOG} - {row[0] for row in CONTRACT} == {
        "METHOD_NOT_ALLOWED",
        "DATABASE_UNAVAILABLE",
        "NOT_READY",
        "QUOTA_EXCEEDED",
    }


def test_problem_document_has_the_rfc9457_and_catalog_fields() -> None:
    body = problem(SessionCode.RENEWAL_CONFLICT, request_id="req_1", hint="use the winner's token")
    assert body == {
        "type": "https://racefree.dev/errors/renewal-conflict",
        "title": "Renewal conflict",
        "status": 409,
        "detail": "another request renewed this session first",
        "code": "RENEWAL_CONFLICT",
        "domain": "SESSION",
        "retryable": False,
        "request_id": "req_1",
        "details": {},
        "hint": "use the winner's token",
    }


def test_error_carries_details_and_retry_after_header() -> None:
    error = RacefreeError(SessionCode.RENEWAL_TOO_EARLY, details={"x": 1}, retry_after=12)
    assert error.status == 403 and error.retryable
    assert error.headers() == {"Retry-After": "12"}
    assert error.to_problem()["details"] == {"x": 1}
    assert (
        str(error)
        == "RENEWAL_TOO_EARLY: too little of the session's lifetime has passed to renew it"
    )


def test_type_uris_are_unique() -> None:
    assert len({s.type_uri for s in CATALOG.values()}) == len(CATALOG)
