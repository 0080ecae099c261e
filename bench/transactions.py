"""Submission throughput for INSTANT transactions through a real ``racefree serve`` process.

One INSTANT submission is the whole race-free path: check-and-reserve on the
session row, the ``PENDING -> EXECUTING -> SUBMITTED -> CONFIRMED`` CASes, the
ledger debit CAS, and the audit rows -- four short write transactions (insert +
reserve + claim; claim SUBMITTED; ledger debit; confirm + settle), five with an
``Idempotency-Key`` (storing the reply), each a commit (an fsync on PostgreSQL).

Contestants, interleaved rounds against one server (one keep-alive connection):

* ``GET /health`` -- the baseline: HTTP round trip + one read of the kill switch;
* ``POST /v1/transactions`` -- an INSTANT submission;
* ``POST /v1/transactions`` + ``Idempotency-Key`` -- the same, plus storing the reply.

Then a concurrent phase: ``--clients`` threads submitting at once, total ops/s.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench._agents import exempt_from_auto_stop
from bench.databases import database_url
from bench.harness import interleaved, ratio, stats_table, update_results_md, write_results
from racefree.testing import Server, start_server

NAME = "transactions"
BODY = {"type": "TRANSFER", "amount": "1", "destination": "acct:bench"}


def _agent_with_session(server: Server) -> str:
    """An agent with a large balance and an unconstrained session; returns the session token."""
    with server.client(headers=server.operator_headers()) as client:
        agent = client.post("/v1/agents", json={"name": "bench"})
        agent.raise_for_status()
        agent_id = agent.json()["id"]
        exempt_from_auto_stop(client, agent_id)
        client.post(
            f"/v1/agents/{agent_id}/deposit", json={"amount": str(10**15)}
        ).raise_for_status()
        session = client.post("/v1/sessions", json={"agent_id": agent_id})
        session.raise_for_status()
    return str(session.json()["token"])


def _ops(base_url: str, token: str) -> tuple[dict[str, Callable[[], None]], list[httpx.Client]]:
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.Client(base_url=base_url, timeout=30, headers=headers) for _ in range(3)]
    health, submit, keyed = clients
    keys = (f"bench-{uuid.uuid4().hex}-{i}" for i in itertools.count())

    def get_health() -> None:
        assert health.get("/health").status_code == 200

    def post() -> None:
        response = submit.post("/v1/transactions", json=BODY)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "CONFIRMED", response.text

    def post_keyed() -> None:
        response = keyed.post(
            "/v1/transactions", json=BODY, headers={"Idempotency-Key": next(keys)}
        )
        assert response.status_code == 200, response.text

    contestants = {
        "GET /health (baseline)": get_health,
        "POST /v1/transactions": post,
        "POST + Idempotency-Key": post_keyed,
    }
    return contestants, clients


def _concurrent(base_url: str, token: str, clients: int, per_client: int) -> dict[str, Any]:
    barrier = threading.Barrier(clients + 1)
    failures: list[str] = []

    def run() -> None:
        with httpx.Client(
            base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            client.get("/health")
            barrier.wait()
            for _ in range(per_client):
                response = client.post("/v1/transactions", json=BODY)
                if response.status_code != 200:
                    failures.append(response.text)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    assert not failures, failures[:3]
    total = clients * per_client
    return {
        "clients": clients,
        "submissions": total,
        "seconds": round(seconds, 3),
        "ops_per_s": round(total / seconds, 1),
    }


def run_engine(engine: str, rounds: int, ops: int, clients: int) -> dict[str, Any]:
    with database_url(engine) as url, tempfile.TemporaryDirectory() as tmp:
        server = start_server(url, Path(tmp), env={"RACEFREE_WORKERS_ENABLED": "false"})
        try:
            token = _agent_with_session(server)
            contestants, http_clients = _ops(server.base_url, token)
            results = interleaved(contestants, rounds=rounds, ops_per_round=ops, warmup=50)
            for c in http_clients:
                c.close()
            concurrent = _concurrent(server.base_url, token, clients, max(1, ops // 2))
        finally:
            server.stop()
    baseline = results["GET /health (baseline)"]
    return {
        "engine": engine,
        "results": results,
        "submit_vs_health": ratio(results["POST /v1/transactions"], baseline),
        "keyed_vs_submit": ratio(
            results["POST + Idempotency-Key"], results["POST /v1/transactions"]
        ),
        "concurrent": concurrent,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench transactions", description=__doc__)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=200, help="operations per round")
    parser.add_argument("--clients", type=int, default=8, help="threads in the concurrent phase")
    args = parser.parse_args(argv)
    runs = [run_engine(e, args.rounds, args.ops, args.clients) for e in args.engines.split(",")]
    write_results(NAME, {"rounds": args.rounds, "ops_per_round": args.ops, "runs": runs})
    command = (
        f'make bench BENCH_ARGS="transactions --rounds {args.rounds} --ops {args.ops}'
        f' --clients {args.clients}"'
    )
    sections = [
        "## INSTANT transaction submission through a real server (issue 5)\n",
        "`POST /v1/transactions` for an INSTANT transfer against a `racefree serve` process:",
        "check-and-reserve CAS on the session, four status CASes, the ledger debit CAS and",
        "the audit rows: four write transactions, each a commit (five with an",
        "Idempotency-Key, which stores the reply). Sequential: one keep-alive client,",
        "interleaved rounds against `GET /health` on the same server. Concurrent: several",
        "clients submitting on one session at once (all contend for the session row).",
        "The machine (2 cores) was shared with other work while this ran: compare the rows",
        "of one run with each other, not across runs.",
        f"Command: `{command}`\n",
    ]
    for run in runs:
        c = run["concurrent"]
        sections.append(
            f"**{run['engine']}**: submission / health = **{run['submit_vs_health']}x**; "
            f"with Idempotency-Key / without = {run['keyed_vs_submit']}x; "
            f"**{c['ops_per_s']:,.0f} submissions/s** with {c['clients']} concurrent clients "
            f"({c['submissions']} in {c['seconds']} s)\n"
        )
        sections.append(stats_table(run["results"], baseline="GET /health (baseline)") + "\n")
        print(
            f"{run['engine']}: submit/health={run['submit_vs_health']}x "
            f"concurrent={c['ops_per_s']} ops/s"
        )
    update_results_md(NAME, "\n".join(sections))


if __name__ == "__main__":
    main()
