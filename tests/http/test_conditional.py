"""ETag / If-Match: the version check is in the CAS; 412 and 428."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient

from racefree.runtime import Runtime
from racefree.testing import Server, http_race
from tests.factory import OWNER_PUBLIC
from tests.http.test_transactions import make_agent


def test_get_and_changes_answer_etags_and_a_stale_if_match_changes_nothing(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    op = operator_headers
    agent_id = make_agent(client, op, balance=0)
    read = client.get(f"/v1/agents/{agent_id}", headers=op)
    etag = read.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    changed = client.patch(
        f"/v1/agents/{agent_id}",
        json={"owner_public_key": OWNER_PUBLIC},
        headers={**op, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    new_etag = changed.headers["etag"]
    assert new_etag != etag
    assert client.get(f"/v1/agents/{agent_id}", headers=op).headers["etag"] == new_etag

    stale = client.patch(
        f"/v1/agents/{agent_id}", json={"owner_public_key": None}, headers={**op, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "PRECONDITION_FAILED"
    assert stale.json()["details"]["current_etag"] == new_etag
    after = client.get(f"/v1/agents/{agent_id}", headers=op)
    assert after.json()["owner"]["public_key"] == OWNER_PUBLIC  # nothing changed
    assert after.headers["etag"] == new_etag

    for sent, status in (("*", 200), ('W/"1"', 412), ("nonsense", 400), (f"{new_etag}", 200)):
        current = client.get(f"/v1/agents/{agent_id}", headers=op).headers["etag"]
        tag = current if sent == new_etag else sent
        response = client.post(
            f"/v1/agents/{agent_id}/deposit", json={"amount": "1"}, headers={**op, "If-Match": tag}
        )
        assert response.status_code == status, (sent, response.text)


def test_kill_switch_etag_and_a_stale_activation(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    op = operator_headers
    etag = client.get("/v1/kill-switch", headers=op).headers["etag"]
    stale = '"999"'
    refused = client.post(
        "/v1/kill-switch/activate", json={"reason": "x"}, headers={**op, "If-Match": stale}
    )
    assert (refused.status_code, refused.json()["details"]["current_etag"]) == (412, etag)
    assert client.get("/v1/kill-switch", headers=op).json()["state"] == "NORMAL"
    done = client.post(
        "/v1/kill-switch/activate", json={"reason": "x"}, headers={**op, "If-Match": etag}
    )
    assert done.status_code == 200 and done.headers["etag"] != etag


def test_require_if_match_makes_changes_without_it_428(
    client: TestClient, operator_headers: dict[str, str], runtime: Runtime
) -> None:
    agent_id = make_agent(client, operator_headers, balance=0)
    runtime.settings = runtime.settings.model_copy(update={"require_if_match": True})
    refused = client.post(f"/v1/agents/{agent_id}/suspend", headers=operator_headers)
    assert (refused.status_code, refused.json()["code"]) == (428, "PRECONDITION_REQUIRED")
    etag = client.get(f"/v1/agents/{agent_id}", headers=operator_headers).headers["etag"]
    allowed = client.post(
        f"/v1/agents/{agent_id}/suspend", headers={**operator_headers, "If-Match": etag}
    )
    assert allowed.status_code == 200
    operation = client.get("/openapi.json").json()["paths"]["/v1/agents/{agent_id}/suspend"]
    assert {"412", "428"} <= set(operation["post"]["responses"])


@pytest.mark.server
def test_ten_concurrent_patches_with_one_if_match_have_one_winner(server: Server) -> None:
    op = server.operator_headers()
    with server.client() as http:
        agent_id = make_agent(http, op, balance=0)
        etag = http.get(f"/v1/agents/{agent_id}", headers=op).headers["etag"]
    responses = http_race(
        10,
        server.base_url,
        "PATCH",
        f"/v1/agents/{agent_id}",
        headers={**op, "If-Match": etag},
        json={"owner_public_key": OWNER_PUBLIC},
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 412: 9}
    (winner,) = [r for r in responses if r.status_code == 200]
    assert all(
        r.json()["details"]["current_etag"] == winner.headers["etag"]
        for r in responses
        if r.status_code == 412
    )
    with server.client() as http:
        entries = http.get("/v1/audit-log?limit=1000", headers=op).json()["entries"]
    assert (
        sum(e["event_type"].startswith("OWNER") and e["agent_id"] == agent_id for e in entries) == 1
    )
