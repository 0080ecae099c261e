"""Error answers become exceptions: catalog classes, unknown codes, gateways, Retry-After."""

from __future__ import annotations

import email.utils
import time

import httpx

from racefree.client import ApiError, errors
from racefree.client._transport import error_from, retry_after

PROBLEM = {"content-type": "application/problem+json"}


def _answer(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("GET", "http://racefree.test/x")
    if body is None:
        return httpx.Response(
            status, headers=headers, text="<html>bad gateway</html>", request=request
        )
    return httpx.Response(
        status, headers={**PROBLEM, **(headers or {})}, json=body, request=request
    )


def test_a_catalog_answer_raises_its_class_with_the_answers_fields() -> None:
    error = error_from(
        _answer(
            409,
            {
                "code": "PLAN_GENERATION_IN_PROGRESS",
                "retryable": True,
                "detail": "busy",
                "details": {"holder": "h"},
                "request_id": "req_1",
                "hint": "wait",
            },
            {"Retry-After": "2"},
        )
    )
    assert type(error) is errors.PlanGenerationInProgressError
    assert (error.status, error.retryable, error.retry_after) == (409, True, 2.0)
    assert (error.details, error.request_id, error.hint) == ({"holder": "h"}, "req_1", "wait")


def test_a_code_this_client_does_not_know_is_an_api_error_with_that_code() -> None:
    error = error_from(_answer(418, {"code": "TEAPOT_EMPTY", "retryable": False, "detail": "?"}))
    assert type(error) is ApiError
    assert (error.error_code, error.status, error.retryable) == ("TEAPOT_EMPTY", 418, False)


def test_a_gateway_answer_without_a_problem_body_is_transient() -> None:
    for status, transient in ((502, True), (503, True), (504, True), (429, True), (404, False)):
        error = error_from(_answer(status))
        assert type(error) is ApiError and error.error_code == f"HTTP_{status}"
        assert error.retryable is transient


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert retry_after(_answer(503, headers={"Retry-After": "7"})) == 7.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after(_answer(503, headers={"Retry-After": later}))
    assert seconds is not None and 28 <= seconds <= 31
    assert retry_after(_answer(503, headers={"Retry-After": "soon"})) is None
    assert retry_after(_answer(503)) is None
