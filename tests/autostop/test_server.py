"""AutoStop through a real ``racefree serve``: the acceptance races over HTTP."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from racefree.testing import Server, http_race, start_server

pytestmark = pytest.mark.server


def _agent_and_token(server: Server, *, deposit: int = 0) -> tuple[str, str]:
    with server.client(headers=server.operator_headers()) as c:
        agent = c.post("/v1/agents", json={"name": "auto"}).json()["id"]
        if deposit:
            c.post(f"/v1/agents/{agent}/deposit", json={"amount": str(deposit)}).raise_for_status()
        token = c.post("/v1/sessions", json={"agent_id": agent}).json()["token"]
    return agent, token


def _set_rule(server: Server, **body: Any) -> None:
    with server.client(headers=server.operator_headers()) as c:
        answer = c.post("/v1/auto-stop/rules", json=body)
    assert answer.status_code in (200, 201), answer.text


def _codes(answers: list[httpx.Response]) -> Counter[str]:
    return Counter(a.json().get("code") or a.json().get("status") for a in answers)


def _audit(server: Server, event_type: str) -> list[dict[str, Any]]:
    with server.client(headers=server.operator_headers()) as c:
        entries: list[dict[str, Any]] = c.get(f"/v1/audit-log?event_type={event_type}").json()[
            "entries"
        ]
    return entries


def test_twenty_failing_transfers_suspend_the_agent_once(db_url: str, tmp_path: Path) -> None:
    server = start_server(db_url, tmp_path)
    try:
        _set_rule(server, type="CONSECUTIVE_FAILURES", params={"threshold": 3})
        agent, token = _agent_and_token(server)  # balance 0: every transfer fails
        answers = http_race(
            20,
            server.base_url,
            "POST",
            "/v1/transactions",
            headers={"Authorization": f"Bearer {token}"},
            json={"type": "TRANSFER", "amount": "100", "destination": "acct:x"},
        )
        codes = _codes(answers)
        assert codes["INSUFFICIENT_BALANCE"] >= 3
        assert set(codes) <= {"INSUFFICIENT_BALANCE", "SESSION_REVOKED", "AGENT_SUSPENDED"}
        assert codes.total() == 20
        with server.client(headers=server.operator_headers()) as c:
            shown = c.get(f"/v1/agents/{agent}").json()
            view = c.get(f"/v1/agents/{agent}/auto-stop").json()
            sessions = c.get(f"/v1/sessions?agent_id={agent}").json()
            failed = c.get(f"/v1/transactions?agent_id={agent}&status=FAILED").json()
        assert (shown["status"], shown["suspension_reason"]) == (
            "SUSPENDED",
            "auto_stop:CONSECUTIVE_FAILURES",
        )
        suspended = _audit(server, "AUTO_STOP_SUSPEND")
        assert len(suspended) == 1
        assert suspended[0]["details"]["reason"] == "auto_stop:CONSECUTIVE_FAILURES"
        assert suspended[0]["agent_id"] == agent
        # every failure answered is a FAILED row and one step of the figure
        assert (
            codes["INSUFFICIENT_BALANCE"]
            == len(failed["transactions"])
            == view["figures"]["consecutive_failures"]
        )
        assert sessions["sessions"]
        assert all(s["revoked_at"] is not None for s in sessions["sessions"])
        with httpx.Client(base_url=server.base_url) as c:
            later = c.post(
                "/v1/transactions",
                json={"type": "TRANSFER", "amount": "1", "destination": "acct:x"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert (later.status_code, later.json()["code"]) == (401, "SESSION_REVOKED")
    finally:
        server.stop()


def test_hourly_rate_admits_at_most_ten_of_thirty(db_url: str, tmp_path: Path) -> None:
    server = start_server(db_url, tmp_path)
    try:
        _set_rule(server, type="HOURLY_RATE", params={"max_tx_per_hour": 10})
        agent, token = _agent_and_token(server, deposit=1_000_000)
        answers = http_race(
            30,
            server.base_url,
            "POST",
            "/v1/transactions",
            headers={"Authorization": f"Bearer {token}"},
            json={"type": "TRANSFER", "amount": "10", "destination": "acct:x"},
        )
        codes = _codes(answers)
        # admissions queue on the agent's figures row: the first ten pass, the eleventh
        # crosses the limit and suspends the agent, everyone after it is refused
        assert codes["CONFIRMED"] == 10
        assert set(codes) <= {"CONFIRMED", "SESSION_REVOKED", "AGENT_SUSPENDED"}
        assert codes.total() == 30
        with server.client(headers=server.operator_headers()) as c:
            view = c.get(f"/v1/agents/{agent}/auto-stop").json()
            shown = c.get(f"/v1/agents/{agent}").json()
        assert view["figures"]["transactions_last_hour"] == codes["CONFIRMED"] == 10
        suspended = _audit(server, "AUTO_STOP_SUSPEND")
        assert len(suspended) == 1
        assert suspended[0]["details"]["reason"] == "auto_stop:HOURLY_RATE"
        assert shown["suspension_reason"] == "auto_stop:HOURLY_RATE"
    finally:
        server.stop()
