"""Lock acquire+release throughput: racefree's backends against PALs and python-redis-lock.

One operation = acquire an uncontended lock (no wait) + release it.

* ``pals``: PALs 0.4 (PostgreSQL advisory locks via SQLAlchemy), ``blocking=False`` -- the
  baseline; same PostgreSQL database, same run.
* ``racefree lease (postgresql)``: :class:`LeaseLocks` -- token bump + lease upsert in one
  autocommit statement, release a CAS ``DELETE``; a fencing token with every acquisition.
* ``racefree advisory xact``: :meth:`AdvisoryLocks.hold` -- BEGIN, ``pg_try_advisory_xact_lock``,
  COMMIT (the lock is released by the commit).
* ``racefree advisory session``: :meth:`AdvisoryLocks.session` -- ``pg_try_advisory_lock`` +
  ``pg_advisory_unlock`` on a pinned pool connection.
* ``racefree lease (sqlite)``: :class:`LeaseLocks` on a SQLite file (BEGIN IMMEDIATE write).
* ``python-redis-lock``: ``redis_lock.Lock`` on the local Redis (SET NX + Lua release).

Target (issue 6): each racefree backend at least 4x PALs' throughput.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from bench.databases import postgres_url, sqlite_url
from bench.harness import Stats, interleaved, stats_table, update_results_md, write_results
from racefree.core.clock import SystemClock
from racefree.core.db import Database
from racefree.core.locks import AdvisoryLocks, LeaseLocks

NAME = "locks"
TARGET_X_PALS = 4.0
REDIS_URL = "redis://127.0.0.1:6379/0"
BASELINE = "pals"


def lease_op(db: Database) -> Callable[[], None]:
    locks = LeaseLocks(db, SystemClock())
    keys = itertools.cycle([f"bench:lease:{i}" for i in range(16)])

    def op() -> None:
        lease = locks.acquire(next(keys), holder="bench", ttl_s=30)
        locks.release(lease)

    return op


def advisory_xact_op(db: Database) -> Callable[[], None]:
    advisory = AdvisoryLocks(db, SystemClock())

    def op() -> None:
        with advisory.hold("bench:xact"):
            pass

    return op


def advisory_session_op(db: Database) -> Callable[[], None]:
    advisory = AdvisoryLocks(db, SystemClock())

    def op() -> None:
        with advisory.session("bench:session"):
            pass

    return op


def pals_op(sqlalchemy_url: str) -> Callable[[], None]:
    import pals

    locker = pals.Locker("racefree-bench", sqlalchemy_url)

    def op() -> None:
        lock = locker.lock("bench:pals", blocking=False)
        assert lock.acquire()
        lock.release()

    return op


def redis_lock_op() -> Callable[[], None] | None:
    import redis
    import redis_lock

    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except redis.exceptions.ConnectionError:
        print(f"locks: no Redis at {REDIS_URL}; skipping python-redis-lock")
        return None

    def op() -> None:
        lock = redis_lock.Lock(conn, "racefree-bench", expire=30)
        assert lock.acquire(blocking=False)
        lock.release()

    return op


def speedup(subject: Stats, baseline: Stats) -> float:
    """Throughput of ``subject`` in multiples of ``baseline``'s (mean latency ratio)."""
    return round(baseline.mean_us / subject.mean_us, 2)


def run(rounds: int, ops: int) -> dict[str, Any]:
    with ExitStack() as stack:
        pg_url = stack.enter_context(postgres_url())
        pg = stack.enter_context(Database.from_url(pg_url))
        lite = stack.enter_context(Database.from_url(stack.enter_context(sqlite_url())))
        contestants: dict[str, Callable[[], None]] = {
            BASELINE: pals_op(pg.sqlalchemy_url()),
            "racefree lease (postgresql)": lease_op(pg),
            "racefree advisory xact": advisory_xact_op(pg),
            "racefree advisory session": advisory_session_op(pg),
            "racefree lease (sqlite)": lease_op(lite),
        }
        redis_op = redis_lock_op()
        if redis_op is not None:
            contestants["python-redis-lock"] = redis_op
        results = interleaved(contestants, rounds=rounds, ops_per_round=ops)
    base = results[BASELINE]
    speedups = {name: speedup(s, base) for name, s in results.items()}
    racefree = {n: x for n, x in speedups.items() if n.startswith("racefree")}
    return {
        "results": results,
        "x_pals": speedups,
        "target_x_pals": TARGET_X_PALS,
        "meets_target": {n: x >= TARGET_X_PALS for n, x in racefree.items()},
    }


def _quoted(args: argparse.Namespace) -> str:
    return f'"locks --rounds {args.rounds} --ops {args.ops}"'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench locks", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=1000, help="operations per round")
    args = parser.parse_args(argv)
    outcome = run(args.rounds, args.ops)
    write_results(NAME, {"rounds": args.rounds, "ops_per_round": args.ops, **outcome})
    rows = [
        "| contestant | x PALs throughput | target |",
        "|---|---:|---|",
    ]
    for name, x in outcome["x_pals"].items():
        verdict = outcome["meets_target"].get(name)
        mark = "" if verdict is None else ("meets >= 4x" if verdict else "MISSES 4x")
        rows.append(f"| {name} | {x} | {mark} |")
        print(f"{name}: {x}x PALs {mark}")
    update_results_md(
        NAME,
        "\n".join(
            [
                "## Lock acquire+release throughput (issue 6)\n",
                "One op = acquire an uncontended lock without waiting + release it. PALs and the",
                "racefree PostgreSQL backends use the same database in the same run; Redis is the",
                "local server. Interleaved rounds.",
                f"Command: `make bench BENCH_ARGS={_quoted(args)}`\n",
                "\n".join(rows) + "\n",
                stats_table(outcome["results"], baseline=BASELINE) + "\n",
                "(`x pals` in the table above is the latency ratio: below 1 is faster.)\n",
                "Reading it: advisory locks and PALs write nothing; a lease acquisition is a",
                "durable write (the fencing token must never be issued twice, even across a",
                "database crash), so on PostgreSQL it pays one WAL flush per acquisition and runs",
                "at roughly PALs' speed -- it buys fencing tokens, TTL expiry of dead holders and",
                "SQLite support. Releases and renewals commit without waiting for the flush",
                "(losing one in a crash only delays or shortens a lease). On SQLite",
                "(`synchronous=NORMAL`, WAL) the lease is the fastest backend.",
            ]
        ),
    )


if __name__ == "__main__":
    main()
