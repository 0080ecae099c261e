"""Quotas on plan groups per agent and on generation size (issue 9, item 11).

New settings: ``RACEFREE_PLAN_GROUPS_PER_AGENT`` (default 100) and
``RACEFREE_PLANS_PER_GENERATION`` (default 10,000). Past either: 403
``QUOTA_EXCEEDED`` (details: quota, limit), checked before any work. The
per-agent count is a CAS on a counter row, so concurrent creations cannot
together pass it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from racefree.core.db import Database
from racefree.settings import Settings
from racefree.testing import Server, http_race, start_server
from tests.conftest import TEST_POOL_SIZE
from tests.http.test_transactions import make_agent, make_session, problem

GROUPS = 3
PLANS = 50


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        db_pool_size=TEST_POOL_SIZE,
        plan_groups_per_agent=GROUPS,
        plans_per_generation=PLANS,
    )


def _group(days: int = 5, units: int = 10) -> dict[str, Any]:
    end = (date(2026, 1, 1) + timedelta(days=days - 1)).isoformat()
    return {
        "title": "t",
        "start_date": "2026-01-01",
        "end_date": end,
        "items": [{"name": "a", "units": units}],
    }


def _count(db: Database) -> int:
    with db.read() as tx:
        return int(tx.scalar("SELECT COUNT(*) FROM plan_groups"))


def test_the_defaults_are_sensible() -> None:
    defaults = Settings()
    assert defaults.plan_groups_per_agent == 100
    assert defaults.plans_per_generation == 10_000


def test_an_agent_past_its_plan_group_quota_gets_403(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    mine = make_session(client, operator_headers, make_agent(client, operator_headers))
    other = make_session(client, operator_headers, make_agent(client, operator_headers))
    for _ in range(GROUPS):
        assert client.post("/v1/plan-groups", json=_group(), headers=mine).status_code == 201
    refused = client.post("/v1/plan-groups", json=_group(), headers=mine)
    body = problem(refused, 403, "QUOTA_EXCEEDED")
    assert body["details"] == {"quota": "plan_groups_per_agent", "limit": GROUPS}
    assert _count(db) == GROUPS
    # another agent has its own quota
    assert client.post("/v1/plan-groups", json=_group(), headers=other).status_code == 201


def test_a_generation_past_the_size_quota_is_refused_before_anything_is_stored(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    # 1 item of 60 units over 60 days: 60 plan rows per generation > 50
    refused = client.post(
        "/v1/plan-groups", json=_group(days=60, units=60), headers=operator_headers
    )
    body = problem(refused, 403, "QUOTA_EXCEEDED")
    assert body["details"] == {"quota": "plans_per_generation", "limit": PLANS}
    assert _count(db) == 0
    # the same period with fewer units: at most one plan a day with units -> 40 rows
    fits = client.post("/v1/plan-groups", json=_group(days=60, units=40), headers=operator_headers)
    assert fits.status_code == 201, fits.text


def test_a_stored_group_past_the_size_quota_does_not_generate(
    client: TestClient, operator_headers: dict[str, str], db: Database
) -> None:
    created = client.post("/v1/plan-groups", json=_group(days=5, units=5), headers=operator_headers)
    group_id = created.json()["id"]
    with db.write() as tx:  # stored before the quota was lowered
        tx.execute(
            "UPDATE plan_groups SET end_date = '2026-12-31', items = :items WHERE id = :id",
            {"items": '[{"name": "a", "units": 1000}]', "id": group_id},
        )
    refused = client.post(f"/v1/plan-groups/{group_id}/generate", headers=operator_headers)
    problem(refused, 403, "QUOTA_EXCEEDED")
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM plans") == 0


@pytest.fixture
def quota_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(
        db_url,
        tmp_path,
        env={"RACEFREE_PLAN_GROUPS_PER_AGENT": "5", "RACEFREE_WORKERS_ENABLED": "false"},
    )
    yield srv
    srv.stop()


@pytest.mark.server
def test_twenty_concurrent_creations_stop_exactly_at_the_quota(
    quota_server: Server, db: Database
) -> None:
    with quota_server.client() as http:
        session = make_session(
            http, quota_server.operator_headers(), make_agent(http, quota_server.operator_headers())
        )
    responses = http_race(
        20, quota_server.base_url, "POST", "/v1/plan-groups", headers=session, json=_group()
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 5 + [403] * 15
    assert {r.json()["code"] for r in responses if r.status_code == 403} == {"QUOTA_EXCEEDED"}
    assert _count(db) == 5
