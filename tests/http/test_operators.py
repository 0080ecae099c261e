"""Operator tokens: list, create (shown once), revoke; API and CLI."""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi.testclient import TestClient

from racefree.cli.exits import ExitCode
from racefree.core.db import Database


def test_create_list_and_revoke_operator_tokens(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    created = client.post("/v1/operators", json={"label": "alice"}, headers=operator_headers)
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith("rf_op_")
    assert created.headers["location"] == f"/v1/operators/{body['id']}"
    assert created.headers["cache-control"] == "no-store"
    alice = {"Authorization": f"Bearer {body['token']}"}

    listed = client.get("/v1/operators", headers=alice).json()["operators"]
    assert [o["label"] for o in listed] == ["test", "alice"]
    assert all(set(o) == {"id", "label", "created_at"} for o in listed)
    with db.read() as tx:  # only the hash is stored
        body = {"t": body["token"], **body}
        assert (
            tx.scalar("SELECT COUNT(*) FROM operators WHERE token_hash = :t", {"t": body["token"]})
            == 0
        )

    revoked = client.delete(f"/v1/operators/{body['id']}", headers=operator_headers)
    assert revoked.status_code == 200
    assert revoked.json()["label"] == "alice"
    assert client.get("/v1/operators", headers=alice).json()["code"] == "INVALID_TOKEN"
    again = client.delete(f"/v1/operators/{body['id']}", headers=operator_headers)
    assert (again.status_code, again.json()["code"]) == (404, "OPERATOR_NOT_FOUND")
    with db.read() as tx:
        events = [r["event_type"] for r in tx.all("SELECT event_type FROM audit_log ORDER BY id")]
    assert events[-2:] == ["OPERATOR_TOKEN_CREATED", "OPERATOR_TOKEN_REVOKED"]


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "racefree", *args, "--database-url", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_lists_and_revokes_operator_tokens(db_url: str, db: Database) -> None:
    token = _cli(db_url, "operator", "create-token", "--label", "ci").stdout.strip()
    assert token.startswith("rf_op_")
    listed = json.loads(_cli(db_url, "operator", "list").stdout)["operators"]
    (ci,) = [o for o in listed if o["label"] == "ci"]
    assert token not in json.dumps(listed)
    revoked = _cli(db_url, "operator", "revoke", ci["id"])
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["id"] == ci["id"]
    missing = _cli(db_url, "operator", "revoke", ci["id"])
    assert missing.returncode == ExitCode.NOT_FOUND and "OPERATOR_NOT_FOUND" in missing.stderr
