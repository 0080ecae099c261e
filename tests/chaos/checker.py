"""The invariants (DESIGN 5), checked by SQL against the database and by HTTP against every replica.

Each check of one thing (one account, one transaction, one answer, one
replica's view) counts as one invariant; a failed one is a violation with a
line that says what was expected and what was found.

Money, per account: deposits - balance == sum of CONFIRMED amounts == sum of
ledger debits. Per transaction: a ledger entry (of its amount, for its agent)
iff it is CONFIRMED; one audit row per status it entered. Per session: spent
== sum of CONFIRMED, reserved == sum of unfinished, tx_count == its
transactions. Per client answer: never 500; an unknown outcome is a 503 with
Retry-After; a terminal status told to a client is the row's final status
(so a client told FAILED/CANCELLED/EXPIRED was never charged, one told
CONFIRMED was charged exactly once); a request refused outright left no row.
After quiescing nothing is left running or stranded (an agent AutoStop
suspended keeps its queued work for the operator), and each AutoStop suspension
wrote its one AUTO_STOP_SUSPEND row. The kill switch: at
the activation point no ACTIVE agent, no unrevoked session, no
PENDING/QUEUED/EXECUTING transaction, the audit row's counts equal what the
cascade did, every replica agrees and refuses writes, and nothing is written
while it stays engaged.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from racefree.core.db import Database, Tx
from tests.chaos.cluster import Cluster
from tests.chaos.history import History

OPEN = ("PENDING", "QUEUED", "EXECUTING")
UNFINISHED = ("PENDING", "QUEUED", "EXECUTING", "SUBMITTED")
#: writes that must not commit while the kill switch is engaged
STOPPED_EVENTS = (
    "AGENT_CREATED",
    "AGENT_DEPOSIT",
    "SESSION_CREATED",
    "SESSION_RENEWED",
    "TRANSACTION_CREATED",
    "TRANSACTION_APPROVED",
    "TRANSACTION_SUBMITTED",
    "PLANS_GENERATED",
    "PLAN_GROUP_CREATED",
)


@dataclass
class Report:
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    by_rule: Counter[str] = field(default_factory=Counter)

    def check(self, rule: str, ok: bool, detail: str = "") -> bool:
        self.checked += 1
        if not ok:
            self.by_rule[rule] += 1
            self.violations.append(f"{rule}: {detail}")
        return ok

    def line(self) -> str:
        return f"{self.checked} invariants checked, {len(self.violations)} violations"


def _details(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    return json.loads(raw) if raw else {}


# -- after quiescing -------------------------------------------------------------------


def quiesce(db: Database, timeout_s: float = 45) -> None:
    """Wait until nothing is running or due (the workers settle what faults left behind)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.read() as tx:
            if not _busy(tx):
                return
        time.sleep(0.5)


def _busy(tx: Tx) -> int:
    """Transactions that will still move: running ones, and queued ones of ACTIVE agents."""
    return int(
        tx.scalar(
            "SELECT COUNT(*) FROM transactions t JOIN agents a ON a.id = t.agent_id"
            " WHERE t.status IN ('PENDING', 'EXECUTING', 'SUBMITTED')"
            " OR (t.status = 'QUEUED' AND a.status = 'ACTIVE')"
        )
    )


def check_database(report: Report, db: Database, history: History) -> None:
    with db.read() as tx:
        _money(report, tx, history)
        _transactions(report, tx)
        _sessions(report, tx)
        _answers(report, tx, history)
        _nothing_stranded(report, tx, time.time_ns() // 1_000_000)
        _auto_stop(report, tx)


def _money(report: Report, tx: Tx, history: History) -> None:
    deposits: Counter[str] = Counter()
    for row in tx.all("SELECT agent_id, details FROM audit_log WHERE event_type = 'AGENT_DEPOSIT'"):
        deposits[row["agent_id"]] += int(_details(row["details"])["amount"])
    confirmed = _sums(
        tx, "SELECT agent_id AS k, amount FROM transactions WHERE status = 'CONFIRMED'"
    )
    ledger = _sums(tx, "SELECT agent_id AS k, amount FROM ledger_entries")
    acked: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    for d in history.deposits:
        if d.answer.http == 200:
            acked[d.agent_id] += d.amount
        elif d.answer.http is None or d.answer.http >= 500:
            unknown[d.agent_id] += d.amount
    for row in tx.all("SELECT agent_id, balance FROM accounts"):
        agent, balance = row["agent_id"], int(row["balance"])
        spent = deposits[agent] - balance
        report.check(
            "deposits - balance == CONFIRMED",
            spent == confirmed[agent],
            f"agent {agent}: deposits {deposits[agent]} - balance {balance} = {spent},"
            f" CONFIRMED {confirmed[agent]}",
        )
        report.check(
            "CONFIRMED == ledger debits",
            confirmed[agent] == ledger[agent],
            f"agent {agent}: CONFIRMED {confirmed[agent]}, ledger {ledger[agent]}",
        )
        report.check("balance >= 0", balance >= 0, f"agent {agent}: balance {balance}")
        report.check(
            "acknowledged deposits recorded",
            acked[agent] <= deposits[agent] <= acked[agent] + unknown[agent],
            f"agent {agent}: recorded {deposits[agent]}, acknowledged {acked[agent]},"
            f" unknown {unknown[agent]}",
        )


def _sums(tx: Tx, sql: str) -> Counter[str]:
    sums: Counter[str] = Counter()
    for row in tx.all(sql):
        sums[row["k"]] += int(row["amount"])
    return sums


def _transactions(report: Report, tx: Tx) -> None:
    trails: dict[str, Counter[str]] = defaultdict(Counter)
    for row in tx.all(
        "SELECT transaction_id, event_type, details FROM audit_log WHERE transaction_id IS NOT NULL"
    ):
        details = _details(row["details"])
        to = "CREATED" if row["event_type"] == "TRANSACTION_CREATED" else details.get("to")
        trails[row["transaction_id"]][str(to)] += 1
    rows = tx.all(
        "SELECT t.id, t.status, t.tier, t.amount, t.agent_id, t.submitted_at, t.error,"
        " t.attempts, t.deadline_at_ms,"
        " l.amount AS paid, l.agent_id AS paid_by"
        " FROM transactions t LEFT JOIN ledger_entries l ON l.transaction_id = t.id"
    )
    for row in rows:
        txn, status, paid = row["id"], row["status"], row["paid"]
        if status == "CONFIRMED":
            ok = paid is not None and int(paid) == int(row["amount"])
            ok = ok and row["paid_by"] == row["agent_id"]
        else:
            ok = paid is None
        report.check(
            "ledger entry iff CONFIRMED",
            ok,
            f"transaction {txn} is {status} ({row['error']}), ledger entry {paid}",
        )
        trail = trails[txn]
        expected = {"CREATED": 1}
        if row["tier"] in ("DELAY", "APPROVAL"):
            expected["QUEUED"] = 1
        if status not in ("PENDING", "QUEUED"):
            expected[status] = 1
        claimed = row["attempts"] > 0 or (
            row["tier"] == "APPROVAL" and row["deadline_at_ms"] is not None
        )
        if claimed or row["submitted_at"] is not None:
            expected["EXECUTING"] = 1
        if row["submitted_at"] is not None:
            expected["SUBMITTED"] = 1
        for to, count in expected.items():
            report.check(
                "one audit row per status move",
                trail[to] == count,
                f"transaction {txn} ({status}): {trail[to]} audit rows into {to}, expected {count}",
            )


def _sessions(report: Report, tx: Tx) -> None:
    rows = tx.all(
        "SELECT s.id, s.spent, s.reserved, s.tx_count,"
        " (SELECT COALESCE(SUM(amount), 0) FROM transactions t"
        "   WHERE t.session_id = s.id AND t.status = 'CONFIRMED') AS confirmed,"
        " (SELECT COALESCE(SUM(amount), 0) FROM transactions t"
        f"   WHERE t.session_id = s.id AND t.status IN {UNFINISHED!r}) AS open,"
        " (SELECT COUNT(*) FROM transactions t WHERE t.session_id = s.id) AS n"
        " FROM sessions s"
    )
    for row in rows:
        sid = row["id"]
        report.check(
            "session spent == CONFIRMED",
            int(row["spent"]) == int(row["confirmed"]),
            f"session {sid}: spent {row['spent']}, CONFIRMED {row['confirmed']}",
        )
        report.check(
            "session reserved == unfinished",
            int(row["reserved"]) == int(row["open"]),
            f"session {sid}: reserved {row['reserved']}, unfinished {row['open']}",
        )
        report.check(
            "session tx_count == transactions",
            int(row["tx_count"]) == int(row["n"]),
            f"session {sid}: tx_count {row['tx_count']}, transactions {row['n']}",
        )


def _answers(report: Report, tx: Tx, history: History) -> None:
    for answer in history.answers:
        report.check(
            "never 500",
            answer.http is None or answer.http < 500 or answer.http in (503,),
            f"{answer.http} {answer.code} on {answer.path}",
        )
        if answer.http == 503 and answer.unknown:
            report.check(
                "unknown outcome is 503 with Retry-After",
                answer.retry_after is not None,
                f"503 {answer.code} without Retry-After on {answer.path}",
            )
    rows = {
        (r["session_id"], r["idempotency_key"]): r
        for r in tx.all(
            "SELECT session_id, idempotency_key, id, status FROM transactions"
            " WHERE idempotency_key IS NOT NULL"
        )
    }
    for sub in history.submissions:
        row = rows.get((sub.session_id, sub.key))
        for answer in sub.answers:
            report.check(
                "no INVALID_STATE_TRANSITION on submit",
                answer.code != "INVALID_STATE_TRANSITION",
                f"key {sub.key}: {answer.http} {answer.code}",
            )
            final = answer.final_status
            if final is not None:
                actual = row and row["status"]
                report.check(
                    "answered status is final",
                    actual == final,
                    f"transaction {row and row['id']} (key {sub.key}): client told {final},"
                    f" row is {actual}",
                )
        refused = all(
            a.http is not None and 400 <= a.http < 500 and a.status is None and not a.unknown
            for a in sub.answers
        )
        if sub.answers and refused:
            report.check(
                "a refused submission leaves no row",
                row is None,
                f"key {sub.key}: refused with {[a.code for a in sub.answers]}, row {row}",
            )


def _nothing_stranded(report: Report, tx: Tx, now_ms: int) -> None:
    """Nothing unfinished but queued work not yet due -- or queued work of an agent that
    AutoStop (or an operator) suspended: it waits for the operator's decision (activate:
    it runs; terminate: it is cancelled). A kill-switch suspension leaves no open work."""
    for row in tx.all(
        "SELECT t.id, t.status, t.tier, t.execute_after_ms, t.expires_at_ms, a.status AS agent,"
        " a.suspension_reason FROM transactions t JOIN agents a ON a.id = t.agent_id"
        f" WHERE t.status IN {UNFINISHED!r}"
    ):
        due = (row["tier"] == "DELAY" and (row["execute_after_ms"] or 0) <= now_ms - 3000) or (
            row["tier"] == "APPROVAL" and (row["expires_at_ms"] or 0) <= now_ms - 3000
        )
        held = row["agent"] == "SUSPENDED" and row["suspension_reason"] != "kill_switch"
        report.check(
            "nothing stranded",
            row["status"] == "QUEUED" and (not due or held),
            f"transaction {row['id']} {row['tier']} still {row['status']}"
            f" (agent {row['agent']}, {row['suspension_reason']})",
        )


def _auto_stop(report: Report, tx: Tx) -> None:
    """AutoStop acted once per crossing, faults or not: each suspension it made has its one
    AUTO_STOP_SUSPEND row, and an agent it holds suspended has no usable session."""
    made = Counter(
        r["agent_id"]
        for r in tx.all(
            "SELECT agent_id FROM audit_log WHERE event_type = 'AGENT_SUSPENDED'"
            " AND actor = 'auto_stop'"
        )
    )
    recorded = Counter(
        r["agent_id"]
        for r in tx.all("SELECT agent_id FROM audit_log WHERE event_type = 'AUTO_STOP_SUSPEND'")
    )
    for agent in made.keys() | recorded.keys():
        report.check(
            "one AUTO_STOP_SUSPEND per auto-stop suspension",
            made[agent] == recorded[agent],
            f"agent {agent}: {made[agent]} suspensions by auto_stop, {recorded[agent]} rows",
        )
    for row in tx.all(
        "SELECT a.id, (SELECT COUNT(*) FROM sessions s WHERE s.agent_id = a.id"
        " AND s.revoked_at IS NULL) AS unrevoked FROM agents a"
        " WHERE a.status = 'SUSPENDED' AND a.suspension_reason LIKE 'auto_stop:%'"
    ):
        report.check(
            "auto-stopped agent has no unrevoked session",
            int(row["unrevoked"]) == 0,
            f"agent {row['id']}: {row['unrevoked']} unrevoked sessions",
        )


def check_replicas(report: Report, cluster: Cluster, db: Database) -> None:
    """Every replica answers what the database holds."""
    with db.read() as tx:
        agents = {
            r["id"]: r
            for r in tx.all(
                "SELECT a.id, a.status, c.balance FROM agents a"
                " JOIN accounts c ON c.agent_id = a.id"
            )
        }
        statuses = {r["id"]: r["status"] for r in tx.all("SELECT id, status FROM transactions")}
        state = tx.scalar("SELECT state FROM kill_switch")
    headers = cluster.operator_headers()
    for replica in cluster.replicas:
        ks = cluster.request(replica, "GET", "/v1/kill-switch", headers=headers).json()
        report.check("replica kill switch state", ks.get("state") == state, f"{replica.name}: {ks}")
        seen = _page(cluster, replica, "/v1/agents", "agents", headers)
        for agent_id, row in agents.items():
            got = seen.get(agent_id)
            report.check(
                "replica agent == database",
                got is not None
                and got["status"] == row["status"]
                and int(got["balance"]) == int(row["balance"]),
                f"{replica.name}: agent {agent_id} {got and (got['status'], got['balance'])},"
                f" database {(row['status'], row['balance'])}",
            )
        seen_tx = _page(cluster, replica, "/v1/transactions", "transactions", headers, 500)
        for txn_id, status in statuses.items():
            got = seen_tx.get(txn_id)
            report.check(
                "replica transaction == database",
                got is not None and got["status"] == status,
                f"{replica.name}: transaction {txn_id} {got and got['status']}, database {status}",
            )


def _page(
    cluster: Cluster,
    replica: Any,
    path: str,
    key: str,
    headers: dict[str, str],
    limit: int = 1000,
    query: str = "",
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after: str | None = None
    while True:
        url = f"{path}?limit={limit}{query}" + (f"&after_id={after}" if after else "")
        body = cluster.request(replica, "GET", url, headers=headers).json()
        items = body[key]
        for item in items:
            found[item.get("id") or item.get("transaction_id") or item["session_id"]] = item
        if len(items) < limit:
            return found
        after = body["next_after_id"]


# -- the kill switch ---------------------------------------------------------------------


@dataclass
class Engaged:
    """What the cascade left at the activation point, to compare with later."""

    activation_id: str
    activated_at: int
    audit_id: int
    counts: dict[str, int]
    submitted: set[str]


def check_engaged(report: Report, cluster: Cluster, db: Database) -> Engaged:
    """Right after an activation: the cascade is all-or-nothing, every replica agrees."""
    with db.read() as tx:
        ks = tx.one("SELECT state, activation_id, activated_at FROM kill_switch")
        assert ks is not None
        report.check("kill switch ACTIVATED", ks["state"] == "ACTIVATED", str(ks))
        audit = tx.one(
            "SELECT id, details FROM audit_log WHERE event_type = 'KILL_SWITCH_ACTIVATED'"
            " ORDER BY id DESC LIMIT 1"
        )
        assert audit is not None
        details = _details(audit["details"])
        report.check(
            "audit row of this activation",
            details.get("activation_id") == ks["activation_id"],
            f"{details} vs {ks['activation_id']}",
        )
        for rule, sql in (
            ("no ACTIVE agent", "SELECT COUNT(*) FROM agents WHERE status = 'ACTIVE'"),
            ("no unrevoked session", "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL"),
            (
                "no open transaction",
                f"SELECT COUNT(*) FROM transactions WHERE status IN {OPEN!r}",
            ),
        ):
            n = int(tx.scalar(sql))
            report.check(f"activation point: {rule}", n == 0, f"{n} left")
        at = {"at": ks["activated_at"]}
        for name, sql in (
            (
                "sessions_revoked",
                "SELECT COUNT(*) FROM sessions WHERE revoke_reason = 'kill_switch'"
                " AND revoked_at = :at",
            ),
            (
                "transactions_cancelled",
                "SELECT COUNT(*) FROM transactions WHERE status = 'CANCELLED'"
                " AND error = 'KILL_SWITCH' AND updated_at = :at",
            ),
            (
                "agents_suspended",
                "SELECT COUNT(*) FROM agents WHERE status = 'SUSPENDED'"
                " AND suspension_reason = 'kill_switch'",
            ),
        ):
            n = int(tx.scalar(sql, at))
            report.check(
                f"cascade count {name}",
                n == int(details.get(name, -1)),
                f"audit says {details.get(name)}, database has {n}",
            )
        engaged = Engaged(
            ks["activation_id"],
            int(ks["activated_at"]),
            int(audit["id"]),
            _write_counts(tx),
            {
                r["id"]
                for r in tx.all(
                    "SELECT id FROM transactions WHERE status = 'SUBMITTED'"
                    " UNION SELECT transaction_id FROM ledger_entries"
                    # SUBMITTED at the activation but settled before this read (a sweep can
                    # fail it within milliseconds): its last move before the activation row.
                    # Audit ids follow commit order (the audit chain), on both engines.
                    " UNION SELECT a.transaction_id FROM audit_log a"
                    " WHERE a.event_type = 'TRANSACTION_SUBMITTED' AND a.id < :stop"
                    " AND NOT EXISTS (SELECT 1 FROM audit_log b"
                    " WHERE b.transaction_id = a.transaction_id AND b.id > a.id AND b.id < :stop)",
                    {"stop": int(audit["id"])},
                )
            },
        )
    headers = cluster.operator_headers()
    for replica in cluster.replicas:
        _check_replica_engaged(report, cluster, replica, headers, engaged)
    return engaged


def _check_replica_engaged(
    report: Report, cluster: Cluster, replica: Any, headers: dict[str, str], engaged: Engaged
) -> None:
    ks = cluster.request(replica, "GET", "/v1/kill-switch", headers=headers).json()
    report.check(
        "replica sees the activation",
        ks.get("state") == "ACTIVATED" and ks.get("activation_id") == engaged.activation_id,
        f"{replica.name}: {ks}",
    )
    active = _page(cluster, replica, "/v1/agents", "agents", headers, query="&status=ACTIVE")
    report.check("replica: no ACTIVE agent", not active, f"{replica.name}: {sorted(active)}")
    live = _page(cluster, replica, "/v1/sessions", "sessions", headers, query="&active=true")
    report.check("replica: no unrevoked session", not live, f"{replica.name}: {sorted(live)}")
    for status in OPEN:
        found = _page(
            cluster, replica, "/v1/transactions", "transactions", headers, 500, f"&status={status}"
        )
        report.check(
            f"replica: no {status} transaction", not found, f"{replica.name}: {sorted(found)}"
        )
    refused = cluster.request(
        replica, "POST", "/v1/agents", headers=headers, json={"name": "after the stop"}
    )
    report.check(
        "replica refuses writes while engaged",
        refused.status_code == 503 and refused.json().get("code") == "SYSTEM_LOCKED",
        f"{replica.name}: {refused.status_code} {refused.text[:200]}",
    )


def _write_counts(tx: Tx) -> dict[str, int]:
    counts = {
        table: int(tx.scalar(f"SELECT COUNT(*) FROM {table}"))
        for table in ("agents", "sessions", "transactions", "plans")
    }
    for event in STOPPED_EVENTS:
        counts[event] = int(
            tx.scalar("SELECT COUNT(*) FROM audit_log WHERE event_type = :e", {"e": event})
        )
    return counts


def check_still_engaged(report: Report, db: Database, engaged: Engaged) -> None:
    """Just before recovery: nothing was written since the stop (but SUBMITTED ones settling)."""
    with db.read() as tx:
        now = _write_counts(tx)
        for name, before in engaged.counts.items():
            report.check(
                "no write after the stop",
                now[name] == before,
                f"{name}: {before} at the activation point, {now[name]} before recovery",
            )
        late = tx.all(
            "SELECT id, event_type, transaction_id FROM audit_log WHERE id > :id",
            {"id": engaged.audit_id},
        )
        for row in late:
            allowed = not row["event_type"].startswith(STOPPED_EVENTS) and (
                row["transaction_id"] is None or row["transaction_id"] in engaged.submitted
            )
            report.check(
                "no write committed after KILL_SWITCH_ACTIVATED",
                allowed or row["event_type"].startswith("KILL_SWITCH"),
                f"audit {row['id']} {row['event_type']} (transaction {row['transaction_id']})"
                " after the activation",
            )
        for row in tx.all("SELECT transaction_id FROM ledger_entries"):
            report.check(
                "no payment started after the stop",
                row["transaction_id"] in engaged.submitted,
                f"transaction {row['transaction_id']} paid, not SUBMITTED at the activation",
            )
