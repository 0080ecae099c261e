"""Alertmanager in: one activation however many firing alerts arrive; every alert recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree import killswitch
from racefree.autostop import alerts
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.testing import http_race, race, start_server, tally

KILL_ALERT = {
    "status": "firing",
    "labels": {"alertname": "SpendRunaway", "racefree_action": "kill_switch", "severity": "page"},
    "annotations": {"summary": "agents spend 10x the usual rate"},
    "startsAt": "2026-11-30T09:00:00Z",
    "fingerprint": "c0ffee",
}


def payload(*alert_list: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="SpendRunaway"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "racefree",
        "groupLabels": {"alertname": "SpendRunaway"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alert_list),
    }


def _rows(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type=event_type, limit=1000)


def _as_alert(raw: dict[str, Any]) -> alerts.Alert:
    return alerts.Alert(
        status=raw["status"],
        labels=raw["labels"],
        annotations=raw.get("annotations", {}),
        fingerprint=raw.get("fingerprint"),
        starts_at=raw.get("startsAt"),
    )


def test_twenty_concurrent_firing_alerts_activate_exactly_once(
    db: Database, clock: ManualClock
) -> None:
    outcomes = race(
        20, lambda _i: alerts.receive(db, [_as_alert(KILL_ALERT)], now=clock.now(), receiver="r")
    )
    assert tally(outcomes) == {"won": 20}  # never an error to Alertmanager
    results = [o.value[0].outcome for o in outcomes]
    assert results.count(alerts.ACTIVATED) == 1
    assert results.count(alerts.ALREADY_ACTIVE) == 19
    assert len(_rows(db, "KILL_SWITCH_ACTIVATED")) == 1
    received = _rows(db, "ALERT_RECEIVED")
    assert len(received) == 20
    assert {r.actor for r in received} == {"alertmanager"}
    with db.read() as tx:
        state = killswitch.read(tx)
    assert state.state == "ACTIVATED"
    assert state.actor == "alertmanager"
    assert state.reason == "alert SpendRunaway: agents spend 10x the usual rate"


def test_other_alerts_are_recorded_only(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    resolved = {**KILL_ALERT, "status": "resolved"}
    unrelated = {**KILL_ALERT, "labels": {"alertname": "DiskFull"}}
    answer = client.post(
        "/v1/kill-switch/alerts", json=payload(resolved, unrelated), headers=operator_headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["activated"] is False
    assert [o["outcome"] for o in answer.json()["outcomes"]] == ["recorded", "recorded"]
    with db.read() as tx:
        assert killswitch.read(tx).state == "NORMAL"
    received = _rows(db, "ALERT_RECEIVED")
    assert [r.details["alertname"] for r in received] == ["SpendRunaway", "DiskFull"]
    assert [r.severity.value for r in received] == ["info", "warning"]


def test_one_payload_with_several_kill_alerts_activates_once(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    answer = client.post(
        "/v1/kill-switch/alerts",
        json=payload(KILL_ALERT, {**KILL_ALERT, "fingerprint": "beef"}),
        headers=operator_headers,
    )
    body = answer.json()
    assert body["activated"] is True
    assert [o["outcome"] for o in body["outcomes"]] == ["activated", "already_active"]
    # retried by Alertmanager while the switch is engaged: still 200, still recorded
    again = client.post(
        "/v1/kill-switch/alerts", json=payload(KILL_ALERT), headers=operator_headers
    )
    assert again.status_code == 200
    assert again.json()["outcomes"][0]["outcome"] == "already_active"
    assert len(_rows(db, "KILL_SWITCH_ACTIVATED")) == 1
    assert len(_rows(db, "ALERT_RECEIVED")) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"status": "firing"},
        payload({"status": "burning", "labels": {}}),
        payload({**KILL_ALERT, "labels": {"k": "v" * 3000}}),
        {**payload(), "alerts": [KILL_ALERT] * 1001},
    ],
)
def test_malformed_payloads_get_400(
    client: TestClient, operator_headers: dict[str, str], body: dict[str, Any]
) -> None:
    answer = client.post("/v1/kill-switch/alerts", json=body, headers=operator_headers)
    assert answer.status_code == 400
    assert answer.json()["code"] == "VALIDATION_ERROR"


def test_alerts_need_an_operator(client: TestClient) -> None:
    assert client.post("/v1/kill-switch/alerts", json=payload(KILL_ALERT)).status_code == 401


@pytest.mark.server
def test_the_same_alert_posted_twenty_times_to_a_server_activates_once(
    db_url: str, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path)
    try:
        answers = http_race(
            20,
            server.base_url,
            "POST",
            "/v1/kill-switch/alerts",
            headers=server.operator_headers(),
            json=payload(KILL_ALERT),
        )
        assert [a.status_code for a in answers] == [200] * 20
        assert sum(a.json()["activated"] for a in answers) == 1
        with server.client() as c:
            activated = c.get(
                "/v1/audit-log?event_type=KILL_SWITCH_ACTIVATED", headers=server.operator_headers()
            ).json()["entries"]
            received = c.get(
                "/v1/audit-log?event_type=ALERT_RECEIVED", headers=server.operator_headers()
            ).json()["entries"]
        assert len(activated) == 1
        assert activated[0]["actor"] == "alertmanager"
        assert len(received) == 20
    finally:
        server.stop()
