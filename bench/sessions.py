"""Session tokens: in-process verification latency, and renewal throughput over HTTP.

1. **verification** (in process): ``sessions.authenticate`` -- checksum, SHA-256, one
   indexed lookup joined to the agent -- against the bare driver running the same
   lookup on its own connection (the floor). Target (issue 3): p50 < 0.2 ms on SQLite;
   the design notes ask < 2 ms.
2. **renewal** (real ``racefree serve`` process): ``PUT /v1/sessions/{id}/renew`` chained
   (each presents the token the previous one returned) against ``GET /health`` of the
   same app, and ``GET /v1/sessions/current`` (session auth over HTTP), interleaved
   rounds in one run, one keep-alive connection; the ratio renew / health is recorded.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.databases import database_url
from bench.harness import interleaved, ratio, stats_table, update_results_md, write_results
from racefree import agents, sessions
from racefree.core import tokens
from racefree.core.clock import SystemClock
from racefree.core.db import Database, pg_sql
from racefree.sessions import Policy
from racefree.sessions.model import SESSION_PREFIX
from racefree.testing import start_server

NAME = "sessions"
VERIFY_TARGET_P50_US = {"sqlite": 200.0, "postgresql": 2000.0}
LOOKUP = (
    "SELECT s.id, s.agent_id, s.token_hash, s.expires_at, s.revoked_at, s.revoke_reason,"
    " a.status AS agent_status FROM sessions s JOIN agents a ON a.id = s.agent_id"
    " WHERE s.token_hash = :h"
)


def _open_session(db: Database, policy: Policy) -> tuple[str, str]:
    now = SystemClock().now()
    with db.write() as tx:
        agent = agents.create(tx, name="bench", now=now)
        issued = sessions.issue(tx, agent.id, now=now, policy=policy, max_renewals=2**31 - 1)
    return issued.session.id, issued.token


def _raw_lookup(engine: str, url: str, path: str | None, token: str) -> Callable[[], None]:
    token_hash = tokens.digest(token)
    if engine == "sqlite":
        assert path is not None
        conn = sqlite3.connect(path, check_same_thread=False)

        def sqlite_op() -> None:
            assert conn.execute(LOOKUP.replace(":h", "?"), (token_hash,)).fetchone() is not None

        return sqlite_op
    pg = psycopg.connect(url, autocommit=True)
    sql = pg_sql(LOOKUP)

    def pg_op() -> None:
        assert pg.execute(sql, {"h": token_hash}).fetchone() is not None

    return pg_op


def run_verification(engine: str, rounds: int, ops: int) -> dict[str, Any]:
    policy = Policy()
    clock = SystemClock()
    with database_url(engine) as url, ExitStack() as stack:
        db = stack.enter_context(Database.from_url(url))
        _, token = _open_session(db, policy)
        path = getattr(db, "path", None)

        def authenticate() -> None:
            sessions.authenticate(db, token, now=clock.now(), policy=policy)

        malformed = token[:-1] + ("A" if token[-1] != "A" else "B")

        def refuse_malformed() -> None:
            assert not tokens.well_formed(malformed, SESSION_PREFIX)

        results = interleaved(
            {
                "raw indexed lookup": _raw_lookup(engine, url, path, token),
                "sessions.authenticate": authenticate,
                "malformed token refused": refuse_malformed,
            },
            rounds=rounds,
            ops_per_round=ops,
        )
    p50 = results["sessions.authenticate"].p50_us
    return {
        "engine": engine,
        "results": results,
        "authenticate_vs_raw": ratio(
            results["sessions.authenticate"], results["raw indexed lookup"]
        ),
        "p50_target_us": VERIFY_TARGET_P50_US[engine],
        "meets_target": p50 < VERIFY_TARGET_P50_US[engine],
    }


def run_renewal(engine: str, rounds: int, ops: int) -> dict[str, Any]:
    with database_url(engine) as url, tempfile.TemporaryDirectory() as tmp:
        server = start_server(url, Path(tmp), env={"RACEFREE_SESSION_RENEWAL_MIN_ELAPSED": "0"})
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                ops_headers = server.operator_headers()
                agent_id = client.post(
                    "/v1/agents", json={"name": "bench"}, headers=ops_headers
                ).json()["id"]
                opened = client.post(
                    "/v1/sessions",
                    json={"agent_id": agent_id, "max_renewals": 2**31 - 1},
                    headers=ops_headers,
                ).json()
                state = {"token": opened["token"]}
                renew_path = f"/v1/sessions/{opened['session_id']}/renew"

                def renew() -> None:
                    response = client.put(
                        renew_path, headers={"Authorization": f"Bearer {state['token']}"}
                    )
                    assert response.status_code == 200, response.text
                    state["token"] = response.json()["token"]

                def current() -> None:
                    response = client.get(
                        "/v1/sessions/current",
                        headers={"Authorization": f"Bearer {state['token']}"},
                    )
                    assert response.status_code == 200, response.text

                def health() -> None:
                    assert client.get("/health").status_code == 200

                results = interleaved(
                    {
                        "GET /health": health,
                        "GET /v1/sessions/current": current,
                        "PUT .../renew": renew,
                    },
                    rounds=rounds,
                    ops_per_round=ops,
                    warmup=50,
                )
        finally:
            server.stop()
    return {
        "engine": engine,
        "results": results,
        "renew_vs_health": ratio(results["PUT .../renew"], results["GET /health"]),
        "current_vs_health": ratio(results["GET /v1/sessions/current"], results["GET /health"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench sessions", description=__doc__)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=500, help="verifications per round")
    parser.add_argument("--http-ops", type=int, default=200, help="HTTP requests per round")
    args = parser.parse_args(argv)
    engines = args.engines.split(",")
    verification = [run_verification(e, args.rounds, args.ops) for e in engines]
    renewal = [run_renewal(e, args.rounds, args.http_ops) for e in engines]
    write_results(
        NAME,
        {
            "rounds": args.rounds,
            "ops_per_round": args.ops,
            "http_ops_per_round": args.http_ops,
            "verification": verification,
            "renewal": renewal,
        },
    )
    command = (
        f'make bench BENCH_ARGS="sessions --rounds {args.rounds} --ops {args.ops}'
        f' --http-ops {args.http_ops}"'
    )
    lines = [
        "## Session tokens (issue 3)\n",
        "Verification in process: `sessions.authenticate` (checksum, SHA-256, one indexed",
        "lookup joined to the agent) against the bare driver doing the same lookup.",
        "Renewal through a real `racefree serve` process: chained `PUT .../renew` against",
        "`GET /health` of the same app, interleaved rounds, one keep-alive connection.",
        f"Command: `{command}`\n",
    ]
    for run in verification:
        verdict = "meets" if run["meets_target"] else "MISSES"
        lines.append(
            f"**verification, {run['engine']}**: p50 "
            f"{run['results']['sessions.authenticate'].p50_us} µs (target < "
            f"{run['p50_target_us']:.0f} µs: {verdict}); authenticate / raw = "
            f"{run['authenticate_vs_raw']}x\n"
        )
        lines.append(stats_table(run["results"], baseline="raw indexed lookup") + "\n")
        print(
            f"verify {run['engine']}: p50={run['results']['sessions.authenticate'].p50_us}us "
            f"x raw={run['authenticate_vs_raw']}"
        )
    for run in renewal:
        lines.append(
            f"**renewal over HTTP, {run['engine']}**: renew / health = "
            f"**{run['renew_vs_health']}x**; current / health = {run['current_vs_health']}x\n"
        )
        lines.append(stats_table(run["results"], baseline="GET /health") + "\n")
        print(f"renew {run['engine']}: renew/health={run['renew_vs_health']}x")
    update_results_md(NAME, "\n".join(lines))


if __name__ == "__main__":
    main()
