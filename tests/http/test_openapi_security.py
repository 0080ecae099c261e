"""OpenAPI: security schemes, and on every operation the credentials it takes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from racefree.http import security


def test_every_operation_states_its_credentials_and_they_are_enforced(
    client: TestClient,
) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == set(security.SCHEMES)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "security" in operation, (method, path)
            if operation["security"] and "{" not in path:
                # a protected operation refuses a request that brings no credential at all
                refused = client.request(method.upper(), path)
                assert refused.status_code in (401, 422, 400, 503), (method, path)
    ops = schema["paths"]
    assert ops["/v1/agents"]["post"]["security"] == [{"operatorBearer": []}]
    assert ops["/v1/transactions"]["post"]["security"] == [{"sessionBearer": []}]
    # recovery needs an operator token AND the master password (one requirement, both schemes)
    assert ops["/v1/kill-switch/recovery/complete"]["post"]["security"] == [
        {"masterPassword": [], "operatorBearer": []}
    ]
    assert ops["/v1/transactions/{transaction_id}/approve"]["post"]["security"] == [
        {"ownerSignature": []}
    ]
    assert ops["/health"]["get"]["security"] == []


def test_every_success_response_has_a_typed_schema(client: TestClient) -> None:
    untyped = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                schemas = [c.get("schema") for c in response.get("content", {}).values()]
                if not schemas or not all(schemas):
                    untyped.append((method, path, status))
    assert untyped == []
