"""One chaos run: bring the cluster up, run the workload under faults, quiesce, check.

Seeded: the clients' choices, the faults and their timing come from
``RACEFREE_CHAOS_SEED`` (random when unset, and always printed). Thread
scheduling is not seeded, so a replay repeats the same schedule of requests
and faults, not the same interleaving. A run with a violation keeps its
working directory (server logs, the SQLite file) and its PostgreSQL database,
and says where they are.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from racefree.client.signing import HEADER
from tests.chaos import checker
from tests.chaos.checker import Report
from tests.chaos.cluster import MASTER_PASSWORD, Cluster
from tests.chaos.history import Answer, History
from tests.chaos.nemesis import Nemesis
from tests.chaos.workload import OWNER, Client, Model

#: when, as fractions of the run, the kill switch is activated and recovered
KILL_SWITCH_AT = (0.4, 0.75)


@dataclass
class Result:
    engine: str
    seed: int
    duration_s: float
    report: Report
    history: History
    workdir: Path
    kept: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "seed": self.seed,
            "seconds": round(self.duration_s, 1),
            "requests": self.history.total_requests,
            "requests_by_kind": dict(self.history.requests),
            "answers": dict(
                Counter(f"{a.http} {a.code or ''}".strip() for a in self.history.answers)
            ),
            "transactions": len(self.history.submissions),
            "faults": sum(self.history.faults.values()),
            "faults_by_kind": dict(self.history.faults),
            "fault_seconds": dict(self.history.fault_seconds),
            "kill_switch_cycles": self.history.requests["kill-switch-cycle"],
            "invariants_checked": self.report.checked,
            "violations": len(self.report.violations),
            "violations_by_rule": dict(self.report.by_rule),
        }


def run(engine: str, seed: int, duration_s: float, *, clients: int, replicas: int) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"racefree-chaos-{engine}-"))
    history, model, report = History(), Model(), Report()
    began = time.monotonic()
    with Cluster.up(engine, workdir, replicas) as cluster:
        started = time.monotonic()  # the schedule counts from a running cluster
        stopping = threading.Event()
        threads = [Client(i, seed, cluster, model, history, stopping) for i in range(clients)]
        nemesis = Nemesis(seed, cluster, model, history, stopping)
        for thread in [*threads, nemesis]:
            thread.start()
        for at in KILL_SWITCH_AT:
            _sleep_until(started + at * duration_s)
            kill_switch_cycle(cluster, nemesis, model, history, report)
        _sleep_until(started + duration_s)
        stopping.set()
        for thread in [*threads, nemesis]:
            thread.join(60)
        cluster.heal()
        with cluster.database() as db:
            checker.quiesce(db)
            checker.check_database(report, db, history)
            checker.check_replicas(report, cluster, db)
        for error in nemesis.errors:
            report.check("fault injected", False, error)
        kept = _keep_or_drop(cluster, report)
    return Result(engine, seed, time.monotonic() - began, report, history, workdir, kept)


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _keep_or_drop(cluster: Cluster, report: Report) -> str | None:
    if report.violations:
        return cluster.pg_database or str(cluster.workdir)
    cluster.drop_database()
    shutil.rmtree(cluster.workdir, ignore_errors=True)
    return None


# -- the kill switch cycle ----------------------------------------------------------------


def kill_switch_cycle(
    cluster: Cluster, nemesis: Nemesis, model: Model, history: History, report: Report
) -> None:
    """Activate under load, check the cascade everywhere, stay engaged a moment, recover."""
    nemesis.hold()
    try:
        with cluster.database() as db:
            _activate(cluster)
            engaged = checker.check_engaged(report, cluster, db)
            time.sleep(1.5)  # the clients keep coming; every write must be refused
            checker.check_still_engaged(report, db, engaged)
            _recover(cluster)
        history.record("kill-switch-cycle", Answer(200, path="kill-switch-cycle"))
    finally:
        model.forget_sessions()
        nemesis.release()


def _activate(cluster: Cluster) -> None:
    headers = cluster.operator_headers()
    for replica in cluster.replicas * 3:
        response = cluster.request(
            replica, "POST", "/v1/kill-switch/activate", headers=headers, json={"reason": "chaos"}
        )
        if response.status_code == 200:
            return
        state = cluster.request(replica, "GET", "/v1/kill-switch", headers=headers).json()
        if state.get("state") == "ACTIVATED":
            return
    raise RuntimeError("the kill switch could not be activated")


def _recover(cluster: Cluster) -> None:
    replica = cluster.replicas[0]
    headers = {**cluster.operator_headers(), "X-Master-Password": MASTER_PASSWORD}
    nonce = cluster.request(replica, "GET", "/v1/nonce", headers=cluster.operator_headers())
    signature = OWNER.header("kill_switch_recovery", nonce.json()["nonce"])
    started = cluster.request(
        replica,
        "POST",
        "/v1/kill-switch/recovery",
        headers={**headers, HEADER: signature},
    )
    if started.status_code != 202:
        raise RuntimeError(f"recovery refused: {started.status_code} {started.text}")
    for _ in range(60):
        done = cluster.request(
            replica, "POST", "/v1/kill-switch/recovery/complete", headers=headers
        )
        if done.status_code == 200:
            return
        time.sleep(float(done.headers.get("Retry-After", "0.5")) or 0.5)
    raise RuntimeError(f"recovery did not complete: {done.status_code} {done.text}")


def print_result(result: Result) -> None:
    summary = result.summary()
    print(f"chaos[{result.engine}] seed {result.seed}: {json.dumps(summary)}")
    shown: Counter[str] = Counter()
    for violation in result.report.violations:
        rule = violation.split(":", 1)[0]
        shown[rule] += 1
        if shown[rule] <= 5:
            print(f"chaos[{result.engine}] VIOLATION {violation}")
    for rule, count in shown.items():
        if count > 5:
            print(f"chaos[{result.engine}] ... {count - 5} more of {rule!r}")
    if result.kept:
        print(f"chaos[{result.engine}] kept for inspection: {result.kept} (logs: {result.workdir})")
        print(f"chaos[{result.engine}] replay: RACEFREE_CHAOS_SEED={result.seed} make chaos")
    print(f"chaos[{result.engine}] {result.report.line()}")
