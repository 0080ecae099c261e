"""Schemathesis against the served OpenAPI document, on both engines (issue 15).

Every operation is called with generated parameters and bodies, as an operator:
no answer is a 500, every status code is one the document lists for the
operation, and every answer validates against the schema documented for its
status (success responses included) with the documented content type.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from racefree.http.app import create_app
from racefree.runtime import Runtime

CHECKS = [status_code_conformance, response_schema_conformance, content_type_conformance]


@pytest.fixture
def api_schema(runtime: Runtime) -> Iterator[schemathesis.BaseSchema]:
    runtime.settings = runtime.settings.model_copy(update={"webhook_allowed_hosts": "127.0.0.1"})
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_served_openapi_holds(case: schemathesis.Case, operator_token: str) -> None:
    headers = {"Authorization": f"Bearer {operator_token}"}
    response = case.call(headers=headers)
    assert response.status_code != 500, (case.method, case.path, response.text)
    case.validate_response(response, checks=CHECKS)
