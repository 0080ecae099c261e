"""Any rotated-out token of a session revokes it, not only the last one (issue 9, item 9).

A thief who renews twice (V0 -> V1 -> V2) leaves the owner holding V0, two
rotations old. When the owner presents V0, two parties have held the
session: it is revoked (``revoke_reason='token_reuse'``) and V0 gets 401
``TOKEN_REUSED`` -- on an authenticated route and on renewal alike.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.testing import Server, http_race

CURRENT = "/v1/sessions/current"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    code: str = response.json()["code"]
    return code


def _chain(
    http: TestClient | httpx.Client, op: dict[str, str], renewals: int, clock: ManualClock | None
) -> tuple[str, list[str]]:
    """A session renewed ``renewals`` times: its id and its tokens V0..Vn."""
    agent = http.post("/v1/agents", json={"name": "bot"}, headers=op).json()
    opened = http.post("/v1/sessions", json={"agent_id": agent["id"]}, headers=op).json()
    tokens = [opened["token"]]
    for _ in range(renewals):
        if clock is not None:
            clock.advance(opened["expires_in"] // 2)  # the minimum elapsed time
        renewed = http.put(
            f"/v1/sessions/{opened['session_id']}/renew", headers=_bearer(tokens[-1])
        )
        assert renewed.status_code == 200, renewed.text
        tokens.append(renewed.json()["token"])
    return opened["session_id"], tokens


def _reuse_events(db: Database, session_id: str) -> int:
    with db.read() as tx:
        return int(
            tx.scalar(
                "SELECT COUNT(*) FROM audit_log WHERE event_type = 'SESSION_TOKEN_REUSED'"
                " AND session_id = :id",
                {"id": session_id},
            )
        )


def _session(http: TestClient | httpx.Client, op: dict[str, str], session_id: str) -> dict:
    body: dict = http.get(f"/v1/sessions/{session_id}", headers=op).json()
    return body


@pytest.mark.parametrize("renewals", [2, 3])
@pytest.mark.parametrize("route", ["current", "renew"])
def test_a_token_two_or_more_rotations_old_revokes_the_session(
    client: TestClient,
    operator_headers: dict[str, str],
    clock: ManualClock,
    db: Database,
    renewals: int,
    route: str,
) -> None:
    session_id, tokens = _chain(client, operator_headers, renewals, clock)
    clock.advance(60)  # well past the reuse window of the last renewal
    if route == "current":
        reused = client.get(CURRENT, headers=_bearer(tokens[0]))
    else:
        reused = client.put(f"/v1/sessions/{session_id}/renew", headers=_bearer(tokens[0]))
    assert (reused.status_code, _code(reused)) == (401, "TOKEN_REUSED")
    session = _session(client, operator_headers, session_id)
    assert (session["revoke_reason"], session["revoked_at"] is not None) == ("token_reuse", True)
    # the thief's current token is dead too, and every old token keeps saying TOKEN_REUSED
    thief = client.get(CURRENT, headers=_bearer(tokens[-1]))
    assert (thief.status_code, _code(thief)) == (401, "SESSION_REVOKED")
    for old in tokens[:-1]:
        again = client.get(CURRENT, headers=_bearer(old))
        assert (again.status_code, _code(again)) == (401, "TOKEN_REUSED")
    assert _reuse_events(db, session_id) == 1


def test_an_older_token_is_reuse_even_inside_the_last_renewals_window(
    client: TestClient, operator_headers: dict[str, str], clock: ManualClock, db: Database
) -> None:
    # the window forgives only the token the last renewal replaced (a racing renewal that
    # lost); a token replaced before that was never current alongside the newest one
    session_id, tokens = _chain(client, operator_headers, 2, clock)
    in_window = client.get(CURRENT, headers=_bearer(tokens[1]))
    assert (in_window.status_code, _code(in_window)) == (401, "INVALID_TOKEN")
    assert client.get(CURRENT, headers=_bearer(tokens[2])).status_code == 200
    reused = client.get(CURRENT, headers=_bearer(tokens[0]))
    assert (reused.status_code, _code(reused)) == (401, "TOKEN_REUSED")
    assert _reuse_events(db, session_id) == 1


@pytest.mark.server
def test_twenty_concurrent_presentations_of_an_old_token_revoke_once(
    renewable_server: Server, db: Database
) -> None:
    with renewable_server.client() as http:
        session_id, tokens = _chain(http, renewable_server.operator_headers(), 2, None)
    responses = http_race(20, renewable_server.base_url, "GET", CURRENT, headers=_bearer(tokens[0]))
    assert {(r.status_code, _code(r)) for r in responses} == {(401, "TOKEN_REUSED")}
    assert _reuse_events(db, session_id) == 1
    with renewable_server.client() as http:
        session = _session(http, renewable_server.operator_headers(), session_id)
        assert session["revoke_reason"] == "token_reuse"
        assert http.get(CURRENT, headers=_bearer(tokens[2])).status_code == 401
