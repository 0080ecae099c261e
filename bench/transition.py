"""A state-machine transition (CAS + one audit row, one write transaction), four ways.

* ``racefree``: ``Database.write()`` + ``StateMachine.transition`` (core.machine);
* ``raw driver``: the identical statements on a bare stdlib ``sqlite3`` / psycopg connection
  (the audit row appended to the hash chain as core.audit does it);
* ``sqlalchemy core``: the identical statements through a SQLAlchemy Core engine -- the
  reason racefree drives the drivers directly on its hot path;
* ``raw, unchained audit``: the raw driver with a plain audit INSERT (into a copy of the
  table): ``raw driver / raw, unchained`` is what the tamper-evident chain costs (issue 9).

Targets (issue 2): racefree <= 1.5x raw on SQLite, <= 1.2x raw on PostgreSQL.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.pool import QueuePool

from bench.databases import database_url
from bench.harness import interleaved, ratio, stats_table, update_results_md, write_results
from racefree.core import audit
from racefree.core.clock import SystemClock
from racefree.core.db import Database, pg_sql
from racefree.core.errors import MachineCode
from racefree.core.machine import AuditContext, StateMachine, move

NAME = "transition"
TARGETS = {"sqlite": 1.5, "postgresql": 1.2}

TOGGLE = StateMachine(
    "toggle",
    table="bench_items",
    key_column="id",
    state_column="state",
    version_column="version",
    states=("A", "B"),
    initial="A",
    transitions=(
        move(
            "flip", "A", "B", conflict=MachineCode.INVALID_STATE_TRANSITION, audit_event="FLIPPED"
        ),
        move(
            "flop", "B", "A", conflict=MachineCode.INVALID_STATE_TRANSITION, audit_event="FLOPPED"
        ),
    ),
)

UPDATE = (
    "UPDATE bench_items SET state = :_target, version = version + 1, updated_at = :_v_updated_at"
    " WHERE id = :_key AND state IN (:_s0) RETURNING *"
)
INSERT_PLAIN = (
    "INSERT INTO bench_audit_plain (at, event_type, severity, actor, agent_id, session_id,"
    " transaction_id, details, request_id) VALUES (:at, :event_type, :severity, :actor,"
    " :agent_id, :session_id, :transaction_id, :details, :request_id)"
)
SCOPE = {"scope": audit.CHAIN_SCOPE}
#: One chained entry, as core.audit writes it (one row of its multi-row INSERT).
INSERT_SQL = (
    f"{audit.INSERT_PREFIX} VALUES (:id, {', '.join(':' + c for c in audit.COLUMNS)}, :hash)"
)
MOVES = (("A", "B", "FLIPPED"), ("B", "A", "FLOPPED"))


def _create_items(db: Database) -> None:
    with db.write() as tx:
        tx.execute(
            "CREATE TABLE bench_items (id TEXT PRIMARY KEY, state TEXT NOT NULL,"
            " version BIGINT NOT NULL, updated_at BIGINT NOT NULL)"
        )
        for key in ("racefree", "raw", "sqlalchemy", "unchained"):
            tx.execute("INSERT INTO bench_items VALUES (:id, 'A', 0, 0)", {"id": key})
        serial = "INTEGER PRIMARY KEY" if tx.is_sqlite else "BIGSERIAL PRIMARY KEY"
        tx.execute(
            f"CREATE TABLE bench_audit_plain (id {serial}, at BIGINT, event_type TEXT,"
            " severity TEXT, actor TEXT, agent_id TEXT, session_id TEXT, transaction_id TEXT,"
            " details TEXT, request_id TEXT)"
        )


def _sqlite_append(execute: Callable[[str, dict[str, Any]], Any], row: dict[str, Any]) -> None:
    """core.audit's SQLite append, statement for statement."""
    last_id, last_hash = execute(audit.HEAD_SQL, SCOPE).fetchone()
    entry_id = last_id + 1
    chained = audit.link(last_hash, entry_id, audit.payload(row))
    execute(INSERT_SQL, {**row, "id": entry_id, "hash": chained})
    execute(audit.MOVE_HEAD_SQL, {"id": entry_id, "hash": chained, "previous_id": last_id, **SCOPE})


def _pg_params(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "payload": audit.payload(row), **SCOPE}


def _params(
    key: str, source: str, target: str, event: str, now: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    update = {"_key": key, "_target": target, "_s0": source, "_v_updated_at": now}
    details = json.dumps({"from": source, "to": target}, separators=(",", ":"), sort_keys=True)
    insert = {
        "at": now,
        "event_type": event,
        "severity": "info",
        "actor": "bench",
        "agent_id": None,
        "session_id": None,
        "transaction_id": None,
        "details": details,
        "request_id": None,
    }
    return update, insert


def racefree_op(db: Database) -> Callable[[], None]:
    clock = SystemClock()
    names = itertools.cycle(("flip", "flop"))
    ctx = AuditContext(actor="bench")

    def op() -> None:
        with db.write() as tx:
            TOGGLE.transition(tx, next(names), "racefree", now=clock.now(), audit_context=ctx)

    return op


def raw_sqlite_op(path: str, *, chained: bool = True) -> Callable[[], None]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    clock = SystemClock()
    moves = itertools.cycle(MOVES)

    def op() -> None:
        source, target, event = next(moves)
        key = "raw" if chained else "unchained"
        update, insert = _params(key, source, target, event, clock.now())
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(UPDATE, update).fetchone()
        assert row is not None
        if chained:
            _sqlite_append(conn.execute, insert)
        else:
            conn.execute(INSERT_PLAIN, insert)
        conn.execute("COMMIT")

    return op


def raw_psycopg_op(url: str, *, chained: bool = True) -> Callable[[], None]:
    conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
    clock = SystemClock()
    moves = itertools.cycle(MOVES)
    update_sql = pg_sql(UPDATE)
    insert_sql = pg_sql(audit.APPEND_PG_SQL if chained else INSERT_PLAIN)
    key = "raw" if chained else "unchained"

    def op() -> None:
        source, target, event = next(moves)
        update, insert = _params(key, source, target, event, clock.now())
        with conn.transaction():
            row = conn.execute(update_sql, update).fetchone()
            assert row is not None
            conn.execute(insert_sql, _pg_params(insert) if chained else insert)

    return op


def sqlalchemy_op(sqlalchemy_url: str, engine_name: str) -> Callable[[], None]:
    engine = create_engine(sqlalchemy_url, poolclass=QueuePool, pool_size=1)
    clock = SystemClock()
    moves = itertools.cycle(MOVES)
    update_stmt = text(UPDATE)

    @contextmanager
    def begin() -> Iterator[Any]:
        with engine.connect() as conn:
            if engine_name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
                conn.exec_driver_sql("COMMIT")
            else:
                with conn.begin():
                    yield conn

    def op() -> None:
        source, target, event = next(moves)
        update, insert = _params("sqlalchemy", source, target, event, clock.now())
        with begin() as conn:
            assert conn.execute(update_stmt, update).first() is not None
            if engine_name == "sqlite":
                _sqlite_append(lambda sql, params: conn.execute(text(sql), params), insert)
            else:
                conn.execute(text(audit.APPEND_PG_SQL), _pg_params(insert))

    if engine_name == "sqlite":
        # let the BEGIN IMMEDIATE above be ours: no pysqlite implicit transactions
        engine = create_engine(
            sqlalchemy_url,
            poolclass=QueuePool,
            pool_size=1,
            connect_args={"isolation_level": None, "check_same_thread": False},
        )
    return op


def run_engine(engine_name: str, rounds: int, ops: int) -> dict[str, Any]:
    with database_url(engine_name) as url, ExitStack() as stack:
        db = stack.enter_context(Database.from_url(url))
        _create_items(db)
        if engine_name == "sqlite":
            raw = raw_sqlite_op(db.path)  # type: ignore[attr-defined]
            unchained = raw_sqlite_op(db.path, chained=False)  # type: ignore[attr-defined]
        else:
            raw, unchained = raw_psycopg_op(url), raw_psycopg_op(url, chained=False)
        contestants = {
            "raw driver": raw,
            "racefree": racefree_op(db),
            "sqlalchemy core": sqlalchemy_op(db.sqlalchemy_url(), engine_name),
            "raw, unchained audit": unchained,
        }
        results = interleaved(contestants, rounds=rounds, ops_per_round=ops)
    overhead = ratio(results["racefree"], results["raw driver"])
    return {
        "engine": engine_name,
        "results": results,
        "racefree_vs_raw": overhead,
        "sqlalchemy_vs_raw": ratio(results["sqlalchemy core"], results["raw driver"]),
        "chain_cost": ratio(results["raw driver"], results["raw, unchained audit"]),
        "target": TARGETS[engine_name],
        "meets_target": overhead <= TARGETS[engine_name],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench transition", description=__doc__)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=1000, help="operations per round")
    args = parser.parse_args(argv)
    runs = [run_engine(e, args.rounds, args.ops) for e in args.engines.split(",")]
    write_results(NAME, {"rounds": args.rounds, "ops_per_round": args.ops, "runs": runs})
    sections = [
        "## Transition overhead (issue 2)\n",
        "One state-machine transition = CAS `UPDATE ... RETURNING` + one audit `INSERT` in one",
        "write transaction. Interleaved rounds, same run, same database.",
        f'Command: `make bench BENCH_ARGS="transition --rounds {args.rounds} --ops {args.ops}"`\n',
    ]
    for run in runs:
        verdict = "meets" if run["meets_target"] else "MISSES"
        sections.append(
            f"**{run['engine']}**: racefree / raw = **{run['racefree_vs_raw']}x** "
            f"(target <= {run['target']}x: {verdict}); SQLAlchemy Core / raw = "
            f"{run['sqlalchemy_vs_raw']}x; the audit hash chain costs the raw driver "
            f"{run['chain_cost']}x (chained / unchained)\n"
        )
        sections.append(stats_table(run["results"], baseline="raw driver") + "\n")
        print(
            f"{run['engine']}: racefree/raw={run['racefree_vs_raw']}x "
            f"sqlalchemy/raw={run['sqlalchemy_vs_raw']}x chain_cost={run['chain_cost']}x"
        )
    update_results_md(NAME, "\n".join(sections))


if __name__ == "__main__":
    main()
