"""The app skeleton: problem+json for every failure, request ids, health, metrics, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from racefree.catalog import CATALOG
from racefree.core import tokens
from racefree.http import create_app
from racefree.runtime import Runtime
from racefree.sessions.model import SESSION_PREFIX

PROBLEM = "application/problem+json"


class Echo(BaseModel):
    name: str = Field(min_length=1)
    count: int


@pytest.fixture
def app_client(runtime: Runtime) -> Iterator[TestClient]:
    """The real app plus two probe routes: one with a body, one that fails unexpectedly."""
    app = create_app(runtime)

    @app.post("/probe/echo")
    def echo(body: Echo) -> Echo:
        return body

    @app.get("/probe/crash")
    def crash() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _is_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_health_reports_the_kill_switch_state(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": "0.1.0",
        "kill_switch": {"state": "NORMAL"},
    }


def test_unknown_route_is_route_not_found(client: TestClient) -> None:
    _is_problem(client.get("/v1/nope"), 404, "ROUTE_NOT_FOUND")


def test_wrong_method_is_method_not_allowed(client: TestClient) -> None:
    _is_problem(client.post("/health"), 405, "METHOD_NOT_ALLOWED")


def test_malformed_json_is_a_validation_error(app_client: TestClient) -> None:
    response = app_client.post(
        "/probe/echo", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    body = _is_problem(response, 400, "VALIDATION_ERROR")
    assert body["details"]["issues"][0]["type"] == "json_invalid"


def test_wrong_types_list_every_issue_without_echoing_input(app_client: TestClient) -> None:
    response = app_client.post("/probe/echo", json={"name": "", "count": "many"})
    issues = _is_problem(response, 400, "VALIDATION_ERROR")["details"]["issues"]
    assert sorted(tuple(i["loc"]) for i in issues) == [("body", "count"), ("body", "name")]
    assert all(set(i) == {"loc", "msg", "type"} for i in issues)


def test_unhandled_errors_are_500_without_internals(app_client: TestClient) -> None:
    response = app_client.get("/probe/crash")
    body = _is_problem(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.text and "hunter2" not in response.text
    assert body["retryable"] is True


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/health").headers["x-request-id"]
    assert generated.startswith("req_")
    unsafe = client.get("/health", headers={"X-Request-ID": "x" * 500}).headers["x-request-id"]
    assert unsafe.startswith("req_")


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/health")
    client.get("/v1/nope")
    text = client.get("/metrics").text
    assert 'racefree_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "racefree_http_request_duration_seconds_bucket" in text


def test_openapi_documents_problem_responses_on_every_operation(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if (
                "422" in responses
            ):  # only the catalog's 422 (IDEMPOTENCY_KEY_MISMATCH), never FastAPI's
                assert set(responses["422"]["content"][PROBLEM]["examples"]) == {
                    "IDEMPOTENCY_KEY_MISMATCH"
                }, (method, path)
            for status in ("400", "500"):
                assert PROBLEM in responses[status]["content"], (method, path, status)
    audit = schema["paths"]["/v1/audit-log"]["get"]["responses"]
    assert set(audit["401"]["content"][PROBLEM]["examples"]) == {"AUTH_REQUIRED", "INVALID_TOKEN"}
    assert "FORBIDDEN" in audit["403"]["content"][PROBLEM]["examples"]


class TestOperatorAuthentication:
    def test_no_credentials_is_auth_required(self, client: TestClient) -> None:
        _is_problem(client.get("/v1/audit-log"), 401, "AUTH_REQUIRED")

    @pytest.mark.parametrize(
        "header", ["Bearer nonsense", "Basic abc", "Bearer " + tokens.mint("rf_op_")]
    )
    def test_bad_or_unknown_tokens_are_invalid(self, client: TestClient, header: str) -> None:
        _is_problem(
            client.get("/v1/audit-log", headers={"Authorization": header}), 401, "INVALID_TOKEN"
        )

    def test_a_session_token_is_forbidden(self, client: TestClient) -> None:
        header = {"Authorization": "Bearer " + tokens.mint(SESSION_PREFIX)}
        _is_problem(client.get("/v1/audit-log", headers=header), 403, "FORBIDDEN")

    def test_an_operator_token_reads_the_audit_log(
        self, client: TestClient, operator_headers: dict[str, str]
    ) -> None:
        response = client.get("/v1/audit-log", headers=operator_headers)
        assert response.status_code == 200
        [entry] = response.json()["entries"]
        assert entry["event_type"] == "OPERATOR_TOKEN_CREATED"
        assert response.json()["next_after_id"] == entry["id"]

    def test_query_validation_is_a_problem(
        self, client: TestClient, operator_headers: dict[str, str]
    ) -> None:
        response = client.get("/v1/audit-log?limit=0", headers=operator_headers)
        _is_problem(response, 400, "VALIDATION_ERROR")


def test_openapi_documents_every_catalog_code_a_route_can_answer(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    documented = {
        name
        for operations in schema["paths"].values()
        for operation in operations.values()
        for response in operation["responses"].values()
        for name in response.get("content", {}).get(PROBLEM, {}).get("examples", {})
    }
    # answered by the app for paths and methods no route has, never by a route
    app_level = {"ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED", "NOT_FOUND"}
    assert {c.value for c in CATALOG} - documented == app_level
