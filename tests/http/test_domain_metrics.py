"""Domain metrics on /metrics: kill switch state, conflicts, transactions, workers."""

from __future__ import annotations

import re
import threading
import uuid

from fastapi.testclient import TestClient

from racefree import killswitch
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.locks import LeaseLocks
from racefree.killswitch import metrics as kill_switch_metrics
from racefree.runtime import Runtime
from racefree.workers import Sweep, WorkerThread
from tests.http.test_transactions import make_agent, make_session, transfer


def metric(client: TestClient, name: str, **labels: str) -> float:
    """The sample's value on /metrics (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", re.MULTILINE)
    for found_labels, value in pattern.findall(client.get("/metrics").text):
        if ",".join(sorted(found_labels.split(","))) == wanted:
            return float(value)
    return 0.0


def test_kill_switch_state_follows_moves_here_and_in_the_database(
    client: TestClient, operator_headers: dict[str, str], db: Database, clock: ManualClock
) -> None:
    assert metric(client, "racefree_kill_switch_state", state="NORMAL") == 1
    assert metric(client, "racefree_kill_switch_state", state="ACTIVATED") == 0
    conflicts = metric(client, "racefree_conflicts_total", code="KILL_SWITCH_ALREADY_ACTIVE")

    # moved by another process (here: straight in the database, as the CLI does)
    killswitch.activate_now(db, "elsewhere", now=clock.now(), actor="cli")
    kill_switch_metrics.show("NORMAL")  # what this process last saw itself
    assert metric(client, "racefree_kill_switch_state", state="ACTIVATED") == 1
    assert metric(client, "racefree_kill_switch_state", state="NORMAL") == 0

    again = client.post("/v1/kill-switch/activate", json={"reason": "x"}, headers=operator_headers)
    assert again.status_code == 409
    after = metric(client, "racefree_conflicts_total", code="KILL_SWITCH_ALREADY_ACTIVE")
    assert after == conflicts + 1


def test_transactions_are_counted_by_status_and_tier_once_committed(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    session = make_session(client, operator_headers, make_agent(client, operator_headers))
    labels = {"tier": "INSTANT"}
    before = {
        s: metric(client, "racefree_transactions_total", status=s, **labels)
        for s in ("PENDING", "CONFIRMED", "FAILED")
    }
    assert client.post("/v1/transactions", json=transfer(10), headers=session).status_code == 200
    poor = make_session(client, operator_headers, make_agent(client, operator_headers, balance=0))
    failed = client.post("/v1/transactions", json=transfer(10), headers=poor)
    assert failed.json()["code"] == "INSUFFICIENT_BALANCE"
    after = {s: metric(client, "racefree_transactions_total", status=s, **labels) for s in before}
    assert after == {
        "PENDING": before["PENDING"] + 2,
        "CONFIRMED": before["CONFIRMED"] + 1,
        "FAILED": before["FAILED"] + 1,
    }


def test_a_worker_records_its_last_successful_sweep(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    sweep = Sweep(f"metrics-probe-{uuid.uuid4().hex[:8]}", lambda: 0)  # one registry per process
    worker = WorkerThread(
        sweep,
        db=runtime.db,
        locks=LeaseLocks(runtime.db, clock),
        holder="test",
        interval_s=1,
        ttl_s=10,
        stopping=threading.Event(),
    )
    assert metric(client, "racefree_worker_last_success_timestamp_seconds", worker=sweep.name) == 0
    worker.tick()
    stamp = metric(client, "racefree_worker_last_success_timestamp_seconds", worker=sweep.name)
    assert stamp > 1_700_000_000


def test_the_kill_switch_cancellations_are_counted_by_tier(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    session = make_session(client, operator_headers, make_agent(client, operator_headers))
    queued = client.post("/v1/transactions", json=transfer(20_000), headers=session)
    assert (queued.status_code, queued.json()["tier"]) == (202, "DELAY")
    labels = {"status": "CANCELLED", "tier": "DELAY"}
    before = metric(client, "racefree_transactions_total", **labels)
    activated = client.post(
        "/v1/kill-switch/activate", json={"reason": "count"}, headers=operator_headers
    )
    assert activated.json()["transactions_cancelled"] == 1
    assert metric(client, "racefree_transactions_total", **labels) == before + 1
