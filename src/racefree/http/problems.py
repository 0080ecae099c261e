"""problem+json everywhere: exception handlers and the OpenAPI error documentation."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from racefree.catalog import CATALOG
from racefree.core import context
from racefree.core.errors import (
    PROBLEM_CONTENT_TYPE,
    Code,
    GeneralCode,
    RacefreeError,
    problem,
    validation_error,
)
from racefree.http import conflicts
from racefree.operators.errors import AuthCode

log = logging.getLogger("racefree.http")


class Problem(BaseModel):
    """RFC 9457 problem details, with racefree's catalog fields."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    domain: str
    retryable: bool
    request_id: str | None
    details: dict[str, Any] = Field(default_factory=dict)
    hint: str | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


def problem_response(error: RacefreeError) -> ProblemResponse:
    conflicts.count(error)
    return ProblemResponse(
        error.to_problem(context.request_id.get()),
        status_code=error.status,
        headers=error.headers(),
    )


def pydantic_issues(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``details.issues`` from pydantic-style ``errors``."""
    # never echo "input" (it may hold a secret) or "ctx" (it may hold exceptions)
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


_HTTP_STATUS_CODES = {
    401: AuthCode.AUTH_REQUIRED,
    403: AuthCode.FORBIDDEN,
    404: GeneralCode.ROUTE_NOT_FOUND,
    405: GeneralCode.METHOD_NOT_ALLOWED,
    413: GeneralCode.PAYLOAD_TOO_LARGE,
}


async def _on_racefree_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RacefreeError)
    return problem_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_error(pydantic_issues(exc.errors())))


async def _on_http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_STATUS_CODES.get(exc.status_code)
    if code is None:
        code = GeneralCode.VALIDATION_ERROR if exc.status_code < 500 else GeneralCode.INTERNAL_ERROR
    response = problem_response(RacefreeError(code))
    if exc.status_code == 405 and exc.headers:
        response.headers["Allow"] = exc.headers.get("Allow", "")
    return response


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RacefreeError, _on_racefree_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)


def internal_error_body() -> bytes:
    body = problem(GeneralCode.INTERNAL_ERROR, request_id=context.request_id.get())
    return bytes(ProblemResponse(body).body)


# -- OpenAPI -------------------------------------------------------------------

PROBLEM_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}

#: Documented on every operation.
DEFAULT_ERRORS = (GeneralCode.VALIDATION_ERROR, GeneralCode.INTERNAL_ERROR)


def errors(*codes: Code) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that may answer with ``codes``."""
    by_status: dict[int, list[Code]] = defaultdict(list)
    for code in codes:
        by_status[CATALOG[code].status].append(code)
    return {status: _response_doc(group) for status, group in sorted(by_status.items())}


def _response_doc(codes: list[Code]) -> dict[str, Any]:
    return {
        "description": " / ".join(f"{c.value}: {CATALOG[c].title}" for c in codes),
        "content": {
            PROBLEM_CONTENT_TYPE: {
                "schema": PROBLEM_SCHEMA_REF,
                "examples": {
                    c.value: {"summary": CATALOG[c].title, "value": problem(c, request_id="req_x")}
                    for c in codes
                },
            }
        },
    }


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Post-process FastAPI's OpenAPI: problem+json instead of its 422, on every operation."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
        Problem.model_json_schema()
    )
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    defaults = errors(*DEFAULT_ERRORS)
    too_large = errors(GeneralCode.PAYLOAD_TOO_LARGE)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            if PROBLEM_CONTENT_TYPE not in responses.get("422", {}).get("content", {}):
                responses.pop("422", None)  # FastAPI's own; a route's documented 422 stays
            for status, doc in defaults.items():
                add_response(responses, status, doc)
            if "requestBody" in operation:
                for status, doc in too_large.items():
                    add_response(responses, status, doc)
    return schema


def add_response(responses: dict[str, Any], status: int | str, doc: dict[str, Any]) -> None:
    """Document ``doc`` under ``status``, keeping the codes already documented there."""
    key = str(status)
    if key in responses:
        _merge(responses[key], doc)
    else:
        responses[key] = doc


def _merge(target: dict[str, Any], doc: dict[str, Any]) -> None:
    target_examples = (
        target.setdefault("content", {})
        .setdefault(PROBLEM_CONTENT_TYPE, {"schema": PROBLEM_SCHEMA_REF})
        .setdefault("examples", {})
    )
    for name, example in doc["content"][PROBLEM_CONTENT_TYPE]["examples"].items():
        if name not in target_examples:
            target_examples[name] = example
            target["description"] += f" / {name}: {example['summary']}"
