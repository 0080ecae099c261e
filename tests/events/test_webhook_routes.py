"""``/v1/webhooks`` through the real app: secrets once, ETag/If-Match, allowed hosts."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from racefree.core.conditional import Precondition
from racefree.core.db import Database
from racefree.core.errors import GeneralCode
from racefree.events import webhooks
from racefree.testing import race, tally

URL = "http://127.0.0.1:9999/hook"


def _create(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        "/v1/webhooks",
        json={"url": URL, "event_types": ["KILL_SWITCH_ACTIVATED"], **body},
        headers=headers,
    )


def test_create_shows_the_secret_once(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    created = _create(client, operator_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert created.headers["Location"] == f"/v1/webhooks/{body['id']}"
    assert created.headers["Cache-Control"] == "no-store"
    assert created.headers["ETag"] == '"1"'
    fetched = client.get(f"/v1/webhooks/{body['id']}", headers=operator_headers)
    assert fetched.status_code == 200
    assert "secret" not in fetched.json()
    assert fetched.headers["ETag"] == '"1"'
    listed = client.get("/v1/webhooks", headers=operator_headers).json()["webhooks"]
    assert [w["id"] for w in listed] == [body["id"]]
    assert body["secret"] not in str(listed)
    with db.read() as tx:
        stored = tx.one("SELECT secret FROM webhooks WHERE id = :id", {"id": body["id"]})
    assert stored is not None and body["secret"] not in stored["secret"]


def test_targets_outside_the_allow_list_and_bad_types_are_refused(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    for url in ("http://10.0.0.1/x", "ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "nope"):
        refused = _create(client, operator_headers, url=url)
        assert refused.status_code == 400, url
        assert refused.json()["code"] == "VALIDATION_ERROR"
    bad_types = _create(client, operator_headers, event_types=["lower-case"])
    assert bad_types.status_code == 400
    assert _create(client, operator_headers, event_types=[]).status_code == 400
    assert client.get("/v1/webhooks", headers=operator_headers).json()["webhooks"] == []


def test_patch_and_delete_honour_if_match(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    hook_id = _create(client, operator_headers).json()["id"]
    stale = client.patch(
        f"/v1/webhooks/{hook_id}",
        json={"status": "DISABLED"},
        headers={**operator_headers, "If-Match": '"7"'},
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "PRECONDITION_FAILED"
    assert stale.json()["details"]["current_etag"] == '"1"'
    changed = client.patch(
        f"/v1/webhooks/{hook_id}",
        json={"status": "DISABLED", "event_types": ["*"]},
        headers={**operator_headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] == '"2"'
    assert changed.json()["status"] == "DISABLED"
    assert changed.json()["event_types"] == ["*"]
    enabled = client.patch(
        f"/v1/webhooks/{hook_id}", json={"status": "ACTIVE"}, headers=operator_headers
    )
    assert enabled.json()["failures"] == 0 and enabled.json()["disabled_reason"] is None
    gone = client.delete(f"/v1/webhooks/{hook_id}", headers={**operator_headers, "If-Match": '"3"'})
    assert gone.status_code == 200
    for method in ("GET", "DELETE"):
        missing = client.request(method, f"/v1/webhooks/{hook_id}", headers=operator_headers)
        assert missing.status_code == 404
        assert missing.json()["code"] == "WEBHOOK_NOT_FOUND"
    deliveries = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=operator_headers)
    assert deliveries.status_code == 404


def test_operator_only_and_ids_validated(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    assert client.get("/v1/webhooks").status_code == 401
    assert client.get("/v1/webhooks/not-an-id", headers=operator_headers).status_code in (400, 422)
    bad_match = client.patch(
        "/v1/webhooks/01a22bfb-98b5-72b4-9bab-e71d926e91d2",
        json={},
        headers={**operator_headers, "If-Match": "abc"},
    )
    assert bad_match.status_code == 400


def test_concurrent_patches_with_one_if_match_let_exactly_one_win(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    hook_id = _create(client, operator_headers).json()["id"]

    def patch(i: int) -> None:
        with db.write() as tx:
            webhooks.update(
                tx, hook_id, now=0, actor="t", expected=Precondition((1,)), url=f"{URL}/{i}"
            )

    outcomes = tally(race(10, patch))
    assert outcomes == {"won": 1, GeneralCode.PRECONDITION_FAILED.value: 9}
