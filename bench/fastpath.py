"""The fast path (issue 11): racefree's hot requests as a ratio to a bare Starlette app.

Every HTTP figure is measured with a lean raw-socket keep-alive client
(:mod:`bench._http`, its own CPU reported per request) against two server
processes started in the same run on the same server stack: ``racefree serve``
and a bare Starlette app answering ``/health`` with a constant
(:mod:`bench._bare`). Rounds alternate between contestants, so drift on the
shared machine hits them alike; the ratio is of p50 latencies.

Contestants, per engine:

* ``bare Starlette GET /health`` -- the baseline (no database);
* ``GET /health`` -- one read of the kill switch state;
* ``GET /v1/sessions/current`` -- guard + session authentication + one read;
* ``PUT /v1/sessions/{id}/renew`` -- chained renewals (each presents the token the
  previous one returned);
* ``POST /v1/transactions`` -- an INSTANT transfer, executed by the ledger;
* PostgreSQL only: ``raw psycopg, one statement, one commit`` -- the floor for a
  submission: one data-modifying CTE (kill switch check, debit, session
  accounting, transaction row, ledger row, audit row) in autocommit, in process.

The one-client rounds run with the load client and both servers pinned to one CPU
(``--pin``, see :func:`pinned`); PostgreSQL's backends are not pinned.

Then 8 concurrent clients (threads, one connection each, each on its own agent
and session) for a fixed time: bare ``/health``, ``/health`` and INSTANT
submissions -- and on PostgreSQL the raw floor -- total requests/s; on PostgreSQL
also the CPU all its processes spent per request (:mod:`bench._cpu`), the cost
that the floor and a submission can be compared by.

Commits and round trips per request are counted from the database, not
estimated: on PostgreSQL a second server talks to the database through a
counting proxy (:mod:`bench._pgwire`: ``ReadyForQuery`` = round trips,
``CommandComplete`` tags = statements, ``COMMIT`` = transaction blocks, a return to
idle after a write = a write commit) and ``pg_stat_database.xact_commit`` deltas are
read after the backends flushed their statistics (every autocommit statement, reads
included, is a transaction there); on SQLite, commit frames appended to the WAL, and
all frames appended: the pages each request writes (:mod:`bench._wal`).

``--src DIR`` serves racefree from another checkout's ``src`` (e.g. today's main,
extracted with ``git archive``) with this benchmark's client, for before/after.
``--compare-src DIR`` serves both side by side (:func:`compare`): one client's
``/health``, renew and INSTANT POST in interleaved pinned rounds with the bare
baseline, then 8-client submissions in alternating rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench import _cpu, _wal
from bench._http import Connection, json_body
from bench._pgwire import CountingProxy
from bench.databases import POSTGRES_ADMIN_URL, database_url
from bench.harness import BENCH_DIR, summarize, update_results_md, write_results
from racefree.core import audit
from racefree.testing import Server, free_port, start_server

NAME = "fastpath"
BARE = "bare Starlette GET /health"
HEALTH = "GET /health"
CURRENT = "GET /v1/sessions/current"
RENEW = "PUT /v1/sessions/{id}/renew"
SUBMIT = "POST /v1/transactions INSTANT"
RAW = "raw psycopg, one statement, one commit"
TRANSFER = json_body({"type": "TRANSFER", "amount": "1", "destination": "acct:bench"})
BIG_BALANCE = str(10**15)
SERVER_ENV = {
    "RACEFREE_WORKERS_ENABLED": "false",
    "RACEFREE_SESSION_RENEWAL_MIN_ELAPSED": "0",
}

Op = Callable[[], None]


# -- servers -------------------------------------------------------------------------------


def _src_env(src: str | None) -> dict[str, str]:
    return {"PYTHONPATH": str(Path(src).resolve())} if src else {}


#: ``--server granian``: the Python that has granian (a scratch venv; not a dependency)
GRANIAN: dict[str, str] = {}


def start_racefree(url: str, workdir: Path, src: str | None, extra: dict[str, str]) -> Server:
    if not GRANIAN:
        return start_server(url, workdir, env={**SERVER_ENV, **_src_env(src), **extra})
    return _start_granian_racefree(url, workdir, src, extra)


def _granian(target: str, port: int, env: dict[str, str], *flags: str) -> subprocess.Popen[bytes]:
    site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    paths = [env.get("PYTHONPATH", ""), str(BENCH_DIR.parent / "src"), str(BENCH_DIR.parent)]
    paths.append(str(site))
    command = [GRANIAN["python"], "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", *flags, target]
    return subprocess.Popen(
        command,
        cwd=BENCH_DIR.parent,
        env={**env, "PYTHONPATH": ":".join(p for p in paths if p)},
        stderr=subprocess.DEVNULL,
    )


def _start_granian_racefree(
    url: str, workdir: Path, src: str | None, extra: dict[str, str]
) -> Server:
    from racefree import operators
    from racefree.core.db import Database

    with Database.from_url(url) as db, db.write() as tx:
        token = operators.create_token(tx, label="bench", now=int(time.time()))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEFREE_")}
    env |= {"RACEFREE_DATABASE_URL": url, "RACEFREE_LOG_LEVEL": "warning", **SERVER_ENV}
    env |= {**_src_env(src), **extra}
    process = _granian("racefree.cli:worker_app", port, env, "--factory")
    base_url = f"http://127.0.0.1:{port}"
    _wait_until_up(base_url, process)
    return Server(base_url, token, "", process, workdir / "granian.log")  # type: ignore[arg-type]


@contextlib.contextmanager
def bare_server(stack: list[str]) -> Iterator[tuple[str, int]]:
    """The bare Starlette app on the same server stack; yields its base URL and pid."""
    port = free_port()
    if GRANIAN:
        process = _granian("bench._bare:app", port, dict(os.environ))
    else:
        command = [sys.executable, "-m", *stack, "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, cwd=BENCH_DIR.parent, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, process)
        yield base_url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            conn = Connection.to(base_url)
            conn.request("GET", "/health")
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


# -- fixtures over HTTP --------------------------------------------------------------------


def _call(conn: Connection, method: str, path: str, token: str, body: Any = None) -> Any:
    import json

    status, raw = conn.request(
        method,
        path,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=None if body is None else json_body(body),
    )
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
    return json.loads(raw)


#: The seeded AutoStop rule HOURLY_RATE (50/h) would stop a benchmark's agent after 50
#: submissions: the agent's own disabled rule replaces it (the other seeded rules,
#: CONSECUTIVE_FAILURES and DAILY_LIMIT, stay and are evaluated on every submission).
HOURLY_RATE_EXEMPTION = {
    "type": "HOURLY_RATE",
    "params": {},
    "action": "SUSPEND_AGENT",
    "enabled": False,
}


def _exempt_from_hourly_rate(conn: Connection, operator: str, agent_id: str) -> None:
    """A server without AutoStop (an older checkout) answers 404: nothing to exempt."""
    status, raw = conn.request(
        "POST",
        "/v1/auto-stop/rules",
        headers={"Authorization": f"Bearer {operator}", "Content-Type": "application/json"},
        body=json_body({**HOURLY_RATE_EXEMPTION, "agent_id": agent_id}),
    )
    if status not in (200, 201, 404):
        raise RuntimeError(f"POST /v1/auto-stop/rules: {status} {raw[:300]!r}")


def _agent_session(conn: Connection, operator: str) -> tuple[str, str]:
    """A funded agent with an open session; returns (session id, token)."""
    agent = _call(conn, "POST", "/v1/agents", operator, {"name": "bench"})
    _exempt_from_hourly_rate(conn, operator, agent["id"])
    _call(conn, "POST", f"/v1/agents/{agent['id']}/deposit", operator, {"amount": BIG_BALANCE})
    session = _call(
        conn, "POST", "/v1/sessions", operator, {"agent_id": agent["id"], "max_renewals": 2**31 - 1}
    )
    return session["session_id"], session["token"]


def _expect(
    conn: Connection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
) -> bytes:
    got, raw = conn.request(method, path, headers=headers, body=body)
    if got != status:
        raise RuntimeError(f"{method} {path}: {got} {raw[:300]!r}")
    return raw


def http_ops(base_url: str, bare_url: str, operator: str) -> dict[str, Op]:
    setup = Connection.to(base_url)
    _, token = _agent_session(setup, operator)
    renew_sid, renew_token = _agent_session(setup, operator)
    setup.close()
    auth = {"Authorization": f"Bearer {token}"}
    post_headers = {**auth, "Content-Type": "application/json"}
    conns = {name: Connection.to(base_url) for name in (HEALTH, CURRENT, RENEW, SUBMIT)}
    bare = Connection.to(bare_url)
    renewing = {"token": renew_token}
    renew_path = f"/v1/sessions/{renew_sid}/renew"

    def renew() -> None:
        import json

        raw = _expect(
            conns[RENEW],
            "PUT",
            renew_path,
            {"Authorization": f"Bearer {renewing['token']}"},
            None,
            200,
        )
        renewing["token"] = json.loads(raw)["token"]

    return {
        BARE: lambda: _no(_expect(bare, "GET", "/health", {}, None, 200)),
        HEALTH: lambda: _no(_expect(conns[HEALTH], "GET", "/health", {}, None, 200)),
        CURRENT: lambda: _no(
            _expect(conns[CURRENT], "GET", "/v1/sessions/current", auth, None, 200)
        ),
        RENEW: renew,
        SUBMIT: lambda: _no(
            _expect(conns[SUBMIT], "POST", "/v1/transactions", post_headers, TRANSFER, 200)
        ),
    }


def _no(_: object) -> None:
    return None


# -- the raw floor (PostgreSQL) ------------------------------------------------------------

RAW_SUBMIT = """
WITH open AS (
  SELECT 1 FROM kill_switch WHERE scope = 'global' AND state = 'NORMAL'
), debit AS (
  UPDATE accounts SET balance = balance - %(amount)s
  WHERE agent_id = %(agent)s AND balance >= %(amount)s AND EXISTS (SELECT 1 FROM open)
  RETURNING agent_id
), spend AS (
  UPDATE sessions SET spent = spent + %(amount)s, tx_count = tx_count + 1
  WHERE id = %(session)s AND revoked_at IS NULL AND expires_at > %(now)s
    AND EXISTS (SELECT 1 FROM debit)
  RETURNING id
), txn AS (
  INSERT INTO transactions (id, agent_id, session_id, type, amount, destination, status, tier,
    attempts, created_at, updated_at, submitted_at, confirmed_at)
  SELECT %(id)s, %(agent)s, id, 'TRANSFER', %(amount)s, 'acct:bench', 'CONFIRMED', 'INSTANT',
    1, %(now)s, %(now)s, %(now)s, %(now)s FROM spend
  RETURNING id
), ledger AS (
  INSERT INTO ledger_entries (transaction_id, agent_id, amount, destination, created_at)
  SELECT id, %(agent)s, %(amount)s, 'acct:bench', %(now)s FROM txn
  RETURNING transaction_id
), head AS (
  UPDATE audit_chain SET last_id = last_id + 1, last_hash = encode(sha256(convert_to(
    last_hash || ':' || (last_id + 1)::text || ':' || %(payload)s, 'UTF8')), 'hex')
  WHERE scope = 'global' AND EXISTS (SELECT 1 FROM ledger)
  RETURNING last_id, last_hash
), audit AS (
  INSERT INTO audit_log (id, at, event_type, severity, actor, agent_id, session_id,
    transaction_id, details, request_id, chain_hash)
  SELECT last_id, %(now)s, 'TX_CONFIRMED', 'info', 'session', %(agent)s, %(session)s, %(id)s,
    '{}', NULL, last_hash
  FROM head
)
SELECT id FROM txn
"""


def raw_op(url: str, base_url: str, operator: str) -> tuple[Op, psycopg.Connection[Any]]:
    setup = Connection.to(base_url)
    sid, _ = _agent_session(setup, operator)
    setup.close()
    conn = psycopg.connect(url, autocommit=True)
    agent = conn.execute("SELECT agent_id FROM sessions WHERE id = %s", (sid,)).fetchone()
    assert agent is not None
    params: dict[str, Any] = {"amount": 1, "agent": agent[0], "session": sid}

    def op() -> None:
        now, txn_id = int(time.time()), str(uuid.uuid4())
        entry = {  # its audit row joins the hash chain (issue 9), as every audit row must
            "at": now,
            "event_type": "TX_CONFIRMED",
            "severity": "info",
            "actor": "session",
            "agent_id": params["agent"],
            "session_id": sid,
            "transaction_id": txn_id,
            "details": "{}",
            "request_id": None,
        }
        chained = {**params, "now": now, "id": txn_id, "payload": audit.payload(entry)}
        row = conn.execute(RAW_SUBMIT, chained).fetchone()
        assert row is not None

    return op, conn


def _raw_maker(
    url: str, base_url: str, operator: str, opened: list[psycopg.Connection[Any]]
) -> Callable[[int], Op]:
    """The raw floor for the concurrent phase: each client its own agent, session and
    connection (kept in ``opened``, to be closed)."""

    def make(_: int) -> Op:
        op, conn = raw_op(url, base_url, operator)
        opened.append(conn)
        return op

    return make


# -- measuring -----------------------------------------------------------------------------


@contextlib.contextmanager
def pinned(cpu: int, pids: list[int]) -> Iterator[None]:
    """This thread and every thread of ``pids`` on ``cpu`` for the block (``--pin``; -1: no).

    Why: on a 2-core machine an unpinned client and server share a core or not by the
    scheduler's whim, for a whole run. Apart, each request also waits for an idle
    core to wake (about 50 µs here), which flips every p50 between two modes from
    run to run. On one core a request costs two context switches and no wake-up: the
    steadiest figures, and the strictest ratios (no constant padding both sides).
    """
    if cpu < 0:
        yield
        return
    everywhere = os.sched_getaffinity(0)
    for task in _tasks(pids):
        os.sched_setaffinity(task, {cpu})
    try:
        yield
    finally:
        for task in _tasks(pids):  # threads started meanwhile inherited the pin
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(task, everywhere)


def _tasks(pids: list[int]) -> list[int]:
    """0 (this thread) and the threads of ``pids``."""
    return [0, *(int(t) for pid in pids for t in os.listdir(f"/proc/{pid}/task"))]


def interleaved(ops: dict[str, Op], rounds: int, per_round: int, warmup: int) -> dict[str, Any]:
    for op in ops.values():
        for _ in range(warmup):
            op()
    latencies: dict[str, list[int]] = {name: [] for name in ops}
    cpu: dict[str, int] = dict.fromkeys(ops, 0)
    order = list(ops.items())
    for r in range(rounds):
        for name, op in order if r % 2 == 0 else list(reversed(order)):
            bucket = latencies[name]
            clock = time.perf_counter_ns
            cpu_started = time.thread_time_ns()
            for _ in range(per_round):
                started = clock()
                op()
                bucket.append(clock() - started)
            cpu[name] += time.thread_time_ns() - cpu_started
    return {
        name: {
            **summarize(lat).__dict__,
            "client_cpu_us": round(cpu[name] / len(lat) / 1000, 1),
        }
        for name, lat in latencies.items()
    }


def concurrent(
    make_op: Callable[[int], Op], clients: int, seconds: float, *, postgres: bool = False
) -> dict[str, Any]:
    """``clients`` threads, each with its own op, for ``seconds``; total requests/s, and
    with ``postgres`` the CPU every PostgreSQL process spent per request."""
    ops = [make_op(i) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()
    counts = [0] * clients
    cpu = [0] * clients
    errors: list[BaseException] = []

    def run(i: int) -> None:
        op = ops[i]
        barrier.wait()
        started = time.thread_time_ns()
        try:
            while not stop.is_set():
                op()
                counts[i] += 1
        except BaseException as exc:
            errors.append(exc)
        cpu[i] = time.thread_time_ns() - started

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    began, database_s = time.perf_counter(), _cpu.postgres_s() if postgres else 0.0
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    database_s = _cpu.postgres_s() - database_s if postgres else 0.0
    if errors:
        raise errors[0]
    total = sum(counts)
    result = {
        "clients": clients,
        "requests": total,
        "req_per_s": round(total / elapsed, 1),
        "client_cpu_us": round(sum(cpu) / max(total, 1) / 1000, 1),
    }
    if postgres:
        result["postgres_cpu_us"] = round(database_s / max(total, 1) * 1e6, 1)
    return result


def concurrent_ops(
    base_url: str, bare_url: str, operator: str, clients: int
) -> dict[str, Callable[[int], Op]]:
    setup = Connection.to(base_url)
    tokens = [_agent_session(setup, operator)[1] for _ in range(clients)]
    setup.close()

    def bare(i: int) -> Op:
        conn = Connection.to(bare_url)
        return lambda: _no(_expect(conn, "GET", "/health", {}, None, 200))

    def health(i: int) -> Op:
        conn = Connection.to(base_url)
        return lambda: _no(_expect(conn, "GET", "/health", {}, None, 200))

    def submit(i: int) -> Op:
        conn = Connection.to(base_url)
        headers = {"Authorization": f"Bearer {tokens[i]}", "Content-Type": "application/json"}
        return lambda: _no(_expect(conn, "POST", "/v1/transactions", headers, TRANSFER, 200))

    return {BARE: bare, HEALTH: health, SUBMIT: submit}


# -- counting from the database ------------------------------------------------------------

COUNTED = (HEALTH, CURRENT, RENEW, SUBMIT)


def _xact_commit(database: str) -> int:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        row = admin.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def count_postgres(
    url: str, workdir: Path, src: str | None, operator: str, n: int, stat_wait: float
) -> dict[str, dict[str, float]]:
    proxy = CountingProxy()
    parsed = make_url(url)
    proxied = parsed.set(
        host="127.0.0.1",
        port=proxy.port,
        query={"sslmode": "disable", "gssencmode": "disable"},
    ).render_as_string(hide_password=False)
    # per request only: no webhook deliverer polling the outbox while counting
    quiet = {"RACEFREE_DB_POOL_SIZE": "4", "RACEFREE_WEBHOOK_DELIVERY_ENABLED": "false"}
    server = start_racefree(proxied, workdir, src, quiet)
    database = str(parsed.database)
    try:
        ops = http_ops(server.base_url, server.base_url, operator)
        counts: dict[str, dict[str, float]] = {}
        for name in COUNTED:
            for _ in range(5):
                ops[name]()  # warm: pool connections opened, caches filled
            time.sleep(stat_wait)  # idle backends flush their statistics
            wire, commits = proxy.snapshot(), _xact_commit(database)
            for _ in range(n):
                ops[name]()
            time.sleep(stat_wait)
            wire_after, commits_after = proxy.snapshot(), _xact_commit(database)
            delta = wire_after - wire
            counts[name] = {
                "xact_commit": round((commits_after - commits) / n, 2),
                "write_commits": round(delta["write_commits"] / n, 2),
                "commit_blocks": round(delta["COMMIT"] / n, 2),
                "round_trips": round(delta["round_trips"] / n, 2),
                "statements": round(delta["statements"] / n, 2),
                "writes": round(delta["writes"] / n, 2),
            }
    finally:
        server.stop()
        proxy.close()
    return counts


def count_sqlite(ops: dict[str, Op], db_path: str, n: int) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, float]] = {}
    for name in COUNTED:
        for _attempt in range(5):
            before = _wal.commit_frames(db_path)
            for _ in range(n):
                ops[name]()
            written = _wal.written_between(before, _wal.commit_frames(db_path))
            if written is not None:  # else a checkpoint restarted the WAL: again
                commits, pages = written
                counts[name] = {"commits": round(commits / n, 2), "pages": round(pages / n, 1)}
                break
    return counts


# -- one engine ----------------------------------------------------------------------------


def run_engine(
    engine: str, args: argparse.Namespace, bare_url: str, bare_pid: int
) -> dict[str, Any]:
    with (
        database_url(engine, migrate=args.src is None) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        server = start_racefree(url, Path(tmp), args.src, {})
        raw_conn = None
        raw_conns: list[psycopg.Connection[Any]] = []
        try:
            operator = server.operator_token
            ops = http_ops(server.base_url, bare_url, operator)
            if engine == "postgresql":
                ops[RAW], raw_conn = raw_op(url, server.base_url, operator)
            with pinned(args.pin, [server.process.pid, bare_pid]):
                results = interleaved(ops, args.rounds, args.ops, warmup=args.ops // 4)
            makers = concurrent_ops(server.base_url, bare_url, operator, args.clients)
            if engine == "postgresql":
                makers[RAW] = _raw_maker(url, server.base_url, operator, raw_conns)
            conc = {
                name: concurrent(make, args.clients, args.seconds, postgres=engine == "postgresql")
                for name, make in makers.items()
            }
            if engine == "sqlite":
                counts = count_sqlite(ops, str(make_url(url).database), args.count)
        finally:
            server.stop()
            for conn in [raw_conn, *raw_conns]:
                if conn is not None:
                    conn.close()
        if engine == "postgresql":
            counts = count_postgres(url, Path(tmp), args.src, operator, args.count, args.stat_wait)
    return {"engine": engine, "results": results, "concurrent": conc, "counts": counts}


# -- this checkout against another, side by side ---------------------------------------------


#: The requests the one-client comparison alternates (with the bare baseline).
COMPARED_ONE_CLIENT = (HEALTH, RENEW, SUBMIT)


def compare(engine: str, args: argparse.Namespace, bare_url: str, bare_pid: int) -> dict[str, Any]:
    """This server and one from ``--compare-src``, each on its own new database, served by
    the same stack: one client's requests in interleaved pinned rounds (each contestant's
    ``/health``, renew and INSTANT POST, and the bare baseline), then 8-client INSTANT
    submissions, rounds alternating between them."""
    contestants = {args.label: args.src, args.compare_label: args.compare_src}
    with contextlib.ExitStack() as stack:
        submit: dict[str, Callable[[int], Op]] = {}
        servers: dict[str, tuple[str, Server, Path]] = {}
        for label, src in contestants.items():
            url = stack.enter_context(database_url(engine, migrate=src is None))
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            server = start_racefree(url, tmp, src, {})
            stack.callback(server.stop)
            servers[label] = (url, server, tmp)
            made = concurrent_ops(
                server.base_url, server.base_url, server.operator_token, args.clients
            )
            submit[label] = made[SUBMIT]
        one_client = _one_client(servers, bare_url, bare_pid, args)
        done: dict[str, list[dict[str, Any]]] = {label: [] for label in contestants}
        cpu = {label: {"server": 0.0, "postgres": 0.0} for label in contestants}
        order = list(contestants)
        for r in range(args.compare_rounds):
            for label in order if r % 2 == 0 else reversed(order):
                pid = servers[label][1].process.pid
                server_s, postgres_s = _cpu.process_s(pid), _cpu.postgres_s()
                done[label].append(concurrent(submit[label], args.clients, args.seconds))
                cpu[label]["server"] += _cpu.process_s(pid) - server_s
                cpu[label]["postgres"] += _cpu.postgres_s() - postgres_s
        for _, server, _ in servers.values():
            server.stop()
        counts = {}
        if engine == "postgresql":
            for label, (url, server, tmp) in servers.items():
                counts[label] = count_postgres(
                    url, tmp, contestants[label], server.operator_token, args.count, args.stat_wait
                )[SUBMIT]
    return {
        "engine": engine,
        "one_client": one_client,
        "rounds": {label: [d["req_per_s"] for d in runs] for label, runs in done.items()},
        "req_per_s": {
            label: round(sum(d["requests"] for d in runs) / (args.seconds * len(runs)), 1)
            for label, runs in done.items()
        },
        "counts": counts,
        "cpu_us_per_req": {
            label: {
                part: round(seconds * 1e6 / max(1, sum(d["requests"] for d in done[label])), 1)
                for part, seconds in cpu[label].items()
            }
            for label in contestants
        },
    }


def _one_client(
    servers: dict[str, tuple[str, Server, Path]],
    bare_url: str,
    bare_pid: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Each contestant's one-client requests and the bare baseline, interleaved and pinned."""
    ops: dict[str, Op] = {}
    for label, (_, server, _) in servers.items():
        theirs = http_ops(server.base_url, bare_url, server.operator_token)
        ops.setdefault(BARE, theirs[BARE])
        ops.update({f"{label}: {name}": theirs[name] for name in COMPARED_ONE_CLIENT})
    pids = [bare_pid, *(server.process.pid for _, server, _ in servers.values())]
    with pinned(args.pin, pids):
        return interleaved(ops, args.rounds, args.ops, warmup=args.ops // 4)


def compare_table(result: dict[str, Any], args: argparse.Namespace) -> str:
    mine, theirs = args.label, args.compare_label
    lines = [_one_client_table(result, args), ""] if result.get("one_client") else []
    rate = result["req_per_s"]
    lines += [
        f"**{result['engine']}, {args.clients} concurrent clients, INSTANT POST, "
        f"{args.compare_rounds} alternating rounds of {args.seconds:g} s**: "
        f"{mine} / {theirs} = **{round(rate[mine] / rate[theirs], 2)}x**\n",
        "| server | submissions/s | per round | write commits/req | round trips/req |"
        " statements/req | server CPU µs/req | PostgreSQL CPU µs/req |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    cpu = result.get("cpu_us_per_req", {})
    for label in (mine, theirs):
        c = result["counts"].get(label)
        counted = (
            f" {c['write_commits']} | {c['round_trips']} | {c['statements']} |"
            if c
            else " (not counted) | (not counted) | (not counted) |"
        )
        rounds = ", ".join(f"{x:,.0f}" for x in result["rounds"][label])
        used = cpu.get(label, {})
        spent = f" {used.get('server', '')} | {used.get('postgres', '')} |"
        lines.append(f"| {label} | {rate[label]:,.0f} | {rounds} |{counted}{spent}")
    return "\n".join(lines)


def _one_client_table(result: dict[str, Any], args: argparse.Namespace) -> str:
    mine, theirs, runs = args.label, args.compare_label, result["one_client"]
    lines = [
        f"**{result['engine']}, one client, {args.rounds} interleaved rounds of {args.ops}"
        f" requests, pinned**: p50 µs (x bare Starlette's {runs[BARE]['p50_us']})\n",
        f"| request | {mine} | {theirs} | {mine} / {theirs} |",
        "|---|---:|---:|---:|",
    ]
    for name in COMPARED_ONE_CLIENT:
        a, b = (runs[f"{label}: {name}"]["p50_us"] for label in (mine, theirs))
        bare = runs[BARE]["p50_us"]
        lines.append(
            f"| {name} | {a} ({a / bare:.2f}x) | {b} ({b / bare:.2f}x) | **{a / b:.2f}x** |"
        )
    return "\n".join(lines)


def _p50_ratio(results: dict[str, Any], name: str, base: str) -> float:
    return round(results[name]["p50_us"] / results[base]["p50_us"], 2)


def table(run: dict[str, Any]) -> str:
    results, counts = run["results"], run["counts"]
    pg = run["engine"] == "postgresql"
    head = "| request | p50 µs | p99 µs | x bare p50 | client CPU µs |"
    rule = "|---|---:|---:|---:|---:|"
    head += (
        " write commits/req | xact_commit/req | COMMIT blocks/req | round trips/req |"
        " statements/req |"
        if pg
        else " commits/req (WAL) | pages written/req (WAL) |"
    )
    rule += "---:|---:|---:|---:|---:|" if pg else "---:|---:|"
    lines = [head, rule]
    for name, s in results.items():
        line = (
            f"| {name} | {s['p50_us']} | {s['p99_us']} | {_p50_ratio(results, name, BARE)} |"
            f" {s['client_cpu_us']} |"
        )
        c = counts.get(name)
        if pg:
            keys = ("write_commits", "xact_commit", "commit_blocks", "round_trips", "statements")
            # the raw floor runs in this process, not through the counting proxy
            line += "".join(f" {c[k]} |" for k in keys) if c else " (not counted) |" * len(keys)
        else:
            line += f" {c['commits']} | {c['pages']} |" if c else " (no database) | |"
        lines.append(line)
    if pg and RAW in results:
        floor = _p50_ratio(results, SUBMIT, RAW)
        lines.append(f"\nINSTANT POST / raw one-statement floor (p50): **{floor}x**")
    head = "\n| 8 concurrent clients | requests/s | client CPU µs/req |"
    lines.append(
        head + (" PostgreSQL CPU µs/req |\n|---|---:|---:|---:|" if pg else "\n|---|---:|---:|")
    )
    for name, c in run["concurrent"].items():
        line = f"| {name} | {c['req_per_s']:,.0f} | {c['client_cpu_us']} |"
        lines.append(line + (f" {c.get('postgres_cpu_us', '')} |" if pg else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench fastpath", description=__doc__)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--ops", type=int, default=300, help="requests per contestant per round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4, help="per concurrent contestant")
    parser.add_argument("--count", type=int, default=20, help="requests per counting phase")
    parser.add_argument(
        "--stat-wait",
        type=float,
        default=11.0,
        help="seconds for idle PostgreSQL backends to flush statistics",
    )
    parser.add_argument(
        "--pin",
        type=int,
        default=0,
        help="CPU for the load client and both servers in the one-client rounds (-1: none)",
    )
    parser.add_argument("--src", help="serve racefree from this src directory instead")
    parser.add_argument("--label", default="this branch")
    parser.add_argument(
        "--compare-src",
        help="also compare with racefree from this src directory (e.g. today's main: git"
        " archive main src | tar -x -C DIR): one client's requests interleaved and pinned,"
        " then 8-client submissions in alternating rounds",
    )
    parser.add_argument("--compare-label", default="main")
    parser.add_argument(
        "--compare-engines", default="postgresql", help="engines to compare on (comma list)"
    )
    parser.add_argument("--compare-rounds", type=int, default=6)
    parser.add_argument(
        "--granian-python",
        help="serve both apps with granian, run by this Python (which must have granian)",
    )
    parser.add_argument(
        "--stack",
        default="uvicorn bench._bare:app --log-level warning --no-access-log",
        help="how to serve the bare app (a python -m command line)",
    )
    args = parser.parse_args(argv)
    if args.granian_python:
        GRANIAN["python"] = args.granian_python
    with bare_server(args.stack.split()) as (bare_url, bare_pid):
        runs = [run_engine(e, args, bare_url, bare_pid) for e in args.engines.split(",") if e]
        engines = [e for e in args.compare_engines.split(",") if e] if args.compare_src else []
        compared = [compare(e, args, bare_url, bare_pid) for e in engines]
    key = f"{NAME}-{args.label.replace(' ', '-')}"
    stack = server_stack(args.src, args.granian_python)
    write_results(
        key, {"args": vars(args), "runs": runs, "compared": compared, "server_stack": stack}
    )
    argv_text = shlex.join(argv or sys.argv[1:])  # as typed: labels keep their quotes
    parts = [
        f"## The fast path, {args.label} (issue 11)\n",
        f"Command: `.venv/bin/python -m bench fastpath {argv_text}`  ",
        f"Server stack: {stack}; load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}\n",
    ]
    for run in runs:
        parts.append(f"**{run['engine']}**\n")
        parts.append(table(run) + "\n")
        for name in (HEALTH, CURRENT, RENEW, SUBMIT):
            print(f"{run['engine']}: {name}: {_p50_ratio(run['results'], name, BARE)}x bare")
    for result in compared:
        parts.append(compare_table(result, args) + "\n")
        print(result["engine"], result["req_per_s"])
    update_results_md(key, "\n".join(parts))


def server_stack(src: str | None, granian_python: str | None = None) -> str:
    if granian_python:
        probe = "import granian; print('granian', granian.__version__)"
        out = subprocess.run(
            [granian_python, "-c", probe], check=True, capture_output=True, text=True
        )
        return out.stdout.strip()
    probe = (
        "import importlib.util as u, uvicorn;"
        "print('uvicorn', uvicorn.__version__,"
        " 'httptools' if u.find_spec('httptools') else 'h11',"
        " 'uvloop' if u.find_spec('uvloop') else 'asyncio')"
    )
    env = {**os.environ, **_src_env(src)}
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=env
    )
    return out.stdout.strip()


if __name__ == "__main__":
    main()
