"""An unusable ``Idempotency-Key`` is refused, never silently ignored (issue 9, item 11).

docs/http-api.md: an empty, over-255-character or non-printable key is 400
``VALIDATION_ERROR`` -- before, ``Idempotency-Key: ""`` was dropped and every
retry created another transaction.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.http.test_transactions import make_agent, make_session, problem, transfer

BAD_KEYS = [
    '""',  # the structured-field form of the empty string
    "",
    "   ",
    "a" * 256,
    '"' + "a" * 256 + '"',
    "key\x01",
    "tab\there",
    "del\x7f",
    b"caf\xe9",  # not ASCII (latin-1 bytes on the wire)
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_an_unusable_key_is_400_and_creates_nothing(
    client: TestClient, operator_headers: dict[str, str], key: str | bytes
) -> None:
    session = make_session(client, operator_headers, make_agent(client, operator_headers))
    for _ in range(2):  # a retry must not create a duplicate either
        response = client.post(
            "/v1/transactions",
            json=transfer(100),
            headers={**session, "Idempotency-Key": key},
        )
        body = problem(response, 400, "VALIDATION_ERROR")
        assert "idempotency-key" in str(body["details"]).lower()  # the edge or the route refuses
    assert client.get("/v1/transactions", headers=session).json()["transactions"] == []


@pytest.mark.parametrize("key", ["k-1", '"quoted-key"', "a" * 255, "with space"])
def test_a_usable_key_still_replays(
    client: TestClient, operator_headers: dict[str, str], key: str
) -> None:
    session = make_session(client, operator_headers, make_agent(client, operator_headers))
    headers = {**session, "Idempotency-Key": key}
    first = client.post("/v1/transactions", json=transfer(100), headers=headers)
    again = client.post("/v1/transactions", json=transfer(100), headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["transaction_id"] == first.json()["transaction_id"]
    assert len(client.get("/v1/transactions", headers=session).json()["transactions"]) == 1
