"""AutoStop rules: one per scope and type, agent rules replace global ones, ETag/If-Match."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree import agents
from racefree.autostop import rules
from racefree.autostop.rules import Action, RuleType
from racefree.cli import main
from racefree.core.clock import ManualClock
from racefree.core.conditional import Precondition
from racefree.core.db import Database
from racefree.core.errors import GeneralCode
from racefree.testing import race, tally


def _agent(db: Database, name: str = "a") -> str:
    with db.write() as tx:
        return agents.create(tx, name=name, now=0).id


def _post(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/auto-stop/rules", json=body, headers=headers)


def test_set_replace_and_effective_rules(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    agent = _agent(db)
    made = _post(client, operator_headers, type="CONSECUTIVE_FAILURES", params={"threshold": 3})
    assert made.status_code == 201, made.text
    assert made.headers["ETag"] == '"1"'
    assert made.json()["action"] == "SUSPEND_AGENT" and made.json()["scope"] == "global"
    replaced = _post(
        client,
        operator_headers,
        type="CONSECUTIVE_FAILURES",
        params={"threshold": 5},
        action="WARN",
    )
    assert replaced.status_code == 200
    assert replaced.json()["id"] == made.json()["id"]
    assert replaced.headers["ETag"] == '"2"'
    own = _post(
        client,
        operator_headers,
        type="CONSECUTIVE_FAILURES",
        params={"threshold": 9},
        agent_id=agent,
        action="KILL_SWITCH",
    )
    assert own.status_code == 201
    _post(client, operator_headers, type="HOURLY_RATE", params={"max_tx_per_hour": 7})
    view = client.get(f"/v1/agents/{agent}/auto-stop", headers=operator_headers).json()
    by_type = {r["type"]: r for r in view["rules"]}
    assert by_type["CONSECUTIVE_FAILURES"]["params"] == {"threshold": 9}  # the agent's own
    assert by_type["HOURLY_RATE"]["scope"] == "global"
    assert view["figures"]["consecutive_failures"] == 0
    assert view["figures"]["confirmed_today"] == "0"
    # a disabled agent rule exempts the agent from the global one
    _post(client, operator_headers, type="HOURLY_RATE", params={}, agent_id=agent, enabled=False)
    view = client.get(f"/v1/agents/{agent}/auto-stop", headers=operator_headers).json()
    assert "HOURLY_RATE" not in {r["type"] for r in view["rules"]}
    listed = client.get("/v1/auto-stop/rules", headers=operator_headers).json()["rules"]
    assert [r["scope"] for r in listed] == ["global", "global", "agent", "agent"]
    only_global = client.get("/v1/auto-stop/rules?scope=global", headers=operator_headers)
    assert len(only_global.json()["rules"]) == 2


@pytest.mark.parametrize(
    ("rule_type", "params"),
    [
        ("CONSECUTIVE_FAILURES", {"threshold": 0}),
        ("CONSECUTIVE_FAILURES", {"threshold": 3, "extra": 1}),
        ("DAILY_LIMIT", {}),
        ("DAILY_LIMIT", {"daily_max": "100", "warn_percent": 90, "stop_percent": 80}),
        ("TIME_RESTRICTION", {"allowed_hours": {"start": 5, "end": 5}}),
        ("TIME_RESTRICTION", {"allowed_hours": {"start": 25, "end": 5}}),
        ("ANOMALY_PATTERN", {"same_destination_warn": 30, "same_destination_stop": 20}),
        ("NOT_A_TYPE", {}),
    ],
)
def test_invalid_rules_get_400(
    client: TestClient, operator_headers: dict[str, str], rule_type: str, params: dict[str, Any]
) -> None:
    answer = _post(client, operator_headers, type=rule_type, params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "VALIDATION_ERROR"


def test_amounts_are_strings_and_unknown_agents_404(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    made = _post(client, operator_headers, type="DAILY_LIMIT", params={"daily_max": "5000"})
    assert made.json()["params"] == {"warn_percent": 80, "stop_percent": 100, "daily_max": "5000"}
    missing = _post(
        client,
        operator_headers,
        type="HOURLY_RATE",
        agent_id="01a22bfb-98b5-72b4-9bab-e71d926e91d2",
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "AGENT_NOT_FOUND"


def test_patch_and_delete_with_if_match(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    rule_id = _post(client, operator_headers, type="HOURLY_RATE", params={}).json()["id"]
    path = f"/v1/auto-stop/rules/{rule_id}"
    stale = client.patch(
        path, json={"enabled": False}, headers={**operator_headers, "If-Match": '"9"'}
    )
    assert stale.status_code == 412
    assert stale.json()["details"]["current_etag"] == '"1"'
    ok = client.patch(
        path,
        json={"params": {"max_tx_per_hour": 12}, "action": "WARN"},
        headers={**operator_headers, "If-Match": '"1"'},
    )
    assert ok.status_code == 200
    assert ok.json()["params"] == {"max_tx_per_hour": 12}
    assert ok.headers["ETag"] == '"2"'
    bad = client.patch(path, json={"params": {"max_tx_per_hour": -1}}, headers=operator_headers)
    assert bad.status_code == 400
    assert client.get(path, headers=operator_headers).headers["ETag"] == '"2"'
    assert client.delete(path, headers={**operator_headers, "If-Match": '"1"'}).status_code == 412
    assert client.delete(path, headers={**operator_headers, "If-Match": '"2"'}).status_code == 200
    gone = client.get(path, headers=operator_headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "AUTO_STOP_RULE_NOT_FOUND"


def test_concurrent_patches_with_one_if_match_let_exactly_one_win(
    db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        rule, _ = rules.put(
            tx,
            agent_id=None,
            rule_type=RuleType.HOURLY_RATE,
            params=rules.HourlyRate(),
            action=Action.WARN,
            now=0,
            actor="t",
        )

    def patch(i: int) -> None:
        with db.write() as tx:
            rules.update(
                tx,
                rule.id,
                now=0,
                actor="t",
                expected=Precondition((1,)),
                params={"max_tx_per_hour": i + 1},
            )

    assert tally(race(10, patch)) == {"won": 1, GeneralCode.PRECONDITION_FAILED.value: 9}


def test_concurrent_sets_of_one_type_leave_one_rule(db: Database) -> None:
    def put(i: int) -> None:
        with db.write() as tx:
            rules.put(
                tx,
                agent_id=None,
                rule_type=RuleType.CONSECUTIVE_FAILURES,
                params=rules.ConsecutiveFailures(threshold=i + 1),
                action=Action.SUSPEND_AGENT,
                now=0,
                actor="t",
            )

    assert tally(race(10, put)) == {"won": 10}
    with db.read() as tx:
        found = rules.list_rules(tx)
    assert len(found) == 1 and found[0].version == 10


def test_first_start_seeds_three_suspend_rules_once(db: Database) -> None:
    with db.write() as tx:
        assert rules.seed_defaults(tx, now=0, daily_max=1000) == 3
    with db.read() as tx:
        seeded = rules.list_rules(tx)
    assert sorted(r.type.value for r in seeded) == [
        "CONSECUTIVE_FAILURES",
        "DAILY_LIMIT",
        "HOURLY_RATE",
    ]
    assert {r.action for r in seeded} == {Action.SUSPEND_AGENT}
    with db.write() as tx:
        rules.delete(tx, seeded[0].id, now=0, actor="t")
        assert rules.seed_defaults(tx, now=0, daily_max=1000) == 0  # never again
    with db.read() as tx:
        assert len(rules.list_rules(tx)) == 2


def test_rules_cli(
    monkeypatch: pytest.MonkeyPatch, db_url: str, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RACEFREE_DATABASE_URL", db_url)
    agent = _agent(db)
    assert main(["rules", "set", "CONSECUTIVE_FAILURES", "--param", "threshold=4"]) == 0
    assert (
        main(
            [
                "rules",
                "set",
                "HOURLY_RATE",
                "--agent-id",
                agent,
                "--params",
                '{"max_tx_per_hour": 3}',
                "--action",
                "WARN",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["rules", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)["rules"]
    assert [(r["type"], r["scope"]) for r in listed] == [
        ("CONSECUTIVE_FAILURES", "global"),
        ("HOURLY_RATE", "agent"),
    ]
    assert main(["rules", "delete", listed[0]["id"]]) == 0
    assert main(["rules", "set", "HOURLY_RATE", "--param", "max_tx_per_hour=0"]) == 1
    assert "invalid parameters for HOURLY_RATE" in capsys.readouterr().err
