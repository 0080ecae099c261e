"""An INSTANT or NOTIFY payment by the ledger in one commit (issue 11).

When the executor is the ledger itself, on the submission's own database, its
payment can join the submission's transaction: nothing irreversible happens
outside the database, so nothing needs to be durable before it. One write
transaction then does what the step path (:mod:`racefree.transactions.service`)
spreads over four commits:

* the admission -- the session row's CAS, with the session's limits, the
  agent's ACTIVE status, the AutoStop admission rules (``HOURLY_RATE``,
  ``DAILY_LIMIT``; ``TIME_RESTRICTION`` is decided before), the balance, and
  the ``Idempotency-Key`` still unused -- all in its WHERE;
* only if it matched: the transaction row, inserted ``CONFIRMED`` with the
  stored reply when there is a key; the ledger entry and the debit; the session
  charged (``spent``, never ``reserved``: reserved and settled at once);
  AutoStop's figures; and one audit row per status the transaction went
  through -- ``TRANSACTION_CREATED``, ``_CLAIMED``, ``_SUBMITTED``,
  ``_CONFIRMED`` -- exactly as the step path writes them, appended to the audit
  hash chain (issue 9) in the same commit.

It is taken only when it can end no other way than CONFIRMED with no AutoStop
action: a rule that would fire at admission or at the confirmation (a figure
that would reach a warning or a stop), a balance too small, a limit, a
revoked session, a used key, or -- PostgreSQL -- an account row another
transaction holds: then the CAS does not match, nothing is written, and the
caller takes the step path, whose every refusal and action is its own.

PostgreSQL: one data-modifying statement in autocommit -- one round trip, one
commit. It locks the agent's figures row (AutoStop's first lock: every
transaction that moves the agent's figures takes it first) and the account row
with ``SKIP LOCKED``, so it never waits for either; it matches only if it got
both and the figures row it locked is the version its own snapshot sees (no
figure-moving transaction committed in between), so the windows it counts --
the last hour's transactions, the open amounts, a destination's confirmations --
are exact, as under :mod:`racefree.autostop.figures`' locks. A payment in flight
holds its account row (see ``tests/faults``); another payment of the agent holds
its figures row: either way this one steps aside. An agent's first transaction
(no figures row yet) takes the step path. The session row's CAS may wait, last
(the movers' order: figures, session). Its audit rows join the hash chain in
the statement itself (:func:`racefree.core.audit.append_pg`): once everything
else is written, it locks the chain head -- the last lock it takes, as every
audited transaction takes it last, at its commit -- computes the four links
with ``sha256`` from the head as the previous appender committed it, moves the
head and inserts the rows; the head is held until the statement commits.
SQLite (one writer): the same statements one by one in the write transaction,
the audit rows recorded as any other (:func:`racefree.core.audit.record`,
chained at the commit).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from racefree.agents import accounts
from racefree.autostop import figures
from racefree.autostop.rules import (
    AnomalyPattern,
    DailyLimit,
    HourlyRate,
    Rule,
    RuleType,
    TimeRestriction,
    choose,
)
from racefree.core import amounts, audit
from racefree.core.audit import Severity
from racefree.core.db import Database, Dialect, Tx
from racefree.core.ids import new_id
from racefree.sessions.admission import CHARGE, admits, limit_params
from racefree.sessions.model import Constraints
from racefree.transactions import idempotency, metrics
from racefree.transactions.executors import Executor, LedgerExecutor
from racefree.transactions.idempotency import Reply
from racefree.transactions.machine import TRANSACTIONS, Move, Status, Tier, Transaction
from racefree.transactions.settings import TransactionSettings
from racefree.transactions.submission import Request
from racefree.transactions.tiers import timeout_s

#: The session's agent and limits, and beside them the agent's and the global rules
#: (one row per rule; one row of NULL rule columns when there is none).
_ADMISSION = (
    "SELECT s.agent_id AS session_agent_id, s.constraints AS session_constraints, r.*"
    " FROM sessions s LEFT JOIN auto_stop_rules r ON r.scope IN ('*', s.agent_id)"
    " WHERE s.id = :session_id"
)


def ledger(executor: Executor, db: Database) -> bool:
    """Whether ``executor`` is the ledger itself on ``db`` (whose steps can join a transaction).

    A subclass that changes a step is another executor: it runs step by step.
    """
    return type(executor) is LedgerExecutor and executor.db is db


@dataclass(frozen=True, slots=True)
class Paid:
    """A payment that committed: the transaction as it is now, and the reply to send."""

    transaction: Transaction
    reply: Reply


@dataclass(frozen=True, slots=True)
class _Admission:
    """What the statement is built from: the session's agent and limits, the agent's rules."""

    agent_id: str
    limits: Constraints
    rules: dict[RuleType, Rule]
    #: (id, version) of every rule row the rules were chosen from (global and the agent's)
    rows: tuple[tuple[str, int], ...]


class Admissions:
    """What earlier payments of a session were admitted with: a hint, never trusted.

    A session's agent and limits never change. Its agent's rules may: the payment's
    CAS insists that the rule rows are still the ones remembered, at the same versions
    (a rule is only ever changed with its version raised, or deleted, or created), so a
    stale entry matches nothing and is forgotten -- the step path, which reads the
    rules itself, decides that submission. On PostgreSQL a remembered session saves the
    round trip that reads the rules.
    """

    MAX = 10_000

    def __init__(self) -> None:
        self._known: dict[str, _Admission] = {}

    def get(self, session_id: str) -> _Admission | None:
        return self._known.get(session_id)

    def put(self, session_id: str, admission: _Admission) -> None:
        if len(self._known) >= self.MAX:
            self._known.clear()
        self._known[session_id] = admission

    def forget(self, session_id: str) -> None:
        self._known.pop(session_id, None)


def pay(
    db: Database,
    settings: TransactionSettings,
    admissions: Admissions,
    *,
    session_id: str,
    request: Request,
    tier: Tier,
    idempotency_key: str | None,
    now: int,
    now_ms: int,
) -> Paid | None:
    """Admit and pay in one commit; None when it cannot (nothing written: take the step path)."""
    if not amounts.in_range(request.amount):
        return None  # the step path refuses it
    admission = admissions.get(session_id)
    if db.dialect is Dialect.SQLITE:
        with db.write() as tx:
            admission = admission or _admission(tx, session_id)
            if admission is None:
                return None
            statement = _Statement(
                settings, admission, session_id, request, tier, idempotency_key, now, now_ms
            )
            if statement.fires_now or tx.one(statement.cas_sql(), statement.params) is None:
                admissions.forget(session_id)
                return None
            tx.batch(statement.writes())
            for entry in statement.audit_rows:
                audit.record(tx, **entry)  # chained as the transaction commits
            tx.after_commit(statement.counted)
        admissions.put(session_id, admission)
        return statement.paid()
    if admission is None:
        with db.read() as tx:  # the held connection, before the write (READ COMMITTED)
            admission = _admission(tx, session_id)
        if admission is None:
            return None
    statement = _Statement(
        settings, admission, session_id, request, tier, idempotency_key, now, now_ms
    )
    if statement.fires_now:
        admissions.forget(session_id)
        return None
    with db.write() as tx:  # one statement: it commits as it ends (autocommit)
        [paid] = tx.batch([statement.postgres()], commit=True)
        if paid:
            if len(paid) != len(statement.audit_rows):  # the head's lock makes this exact
                raise RuntimeError("the payment's audit rows did not join the chain")
            tx.after_commit(statement.counted)
            tx.after_commit(lambda: audit.logged(statement.entries()))
    if not paid:
        admissions.forget(session_id)
        return None
    admissions.put(session_id, admission)
    return statement.paid()


def _admission(tx: Tx, session_id: str) -> _Admission | None:
    rows = tx.all(_ADMISSION, {"session_id": session_id})
    if not rows:
        return None  # the step path says SESSION_NOT_FOUND
    session = rows[0]
    rule_rows = [r for r in rows if r["id"] is not None]
    return _Admission(
        session["session_agent_id"],
        Constraints.from_json(session["session_constraints"]),
        choose(rule_rows),
        tuple((r["id"], int(r["version"])) for r in rule_rows),
    )


class _Statement:
    """The payment's SQL and parameters, and the transaction it commits."""

    def __init__(
        self,
        settings: TransactionSettings,
        admission: _Admission,
        session_id: str,
        request: Request,
        tier: Tier,
        key: str | None,
        now: int,
        now_ms: int,
    ) -> None:
        self.admission = admission
        self.rules = admission.rules
        self.now = now
        txn_id = new_id()
        self.transaction = Transaction(
            id=txn_id,
            agent_id=admission.agent_id,
            session_id=session_id,
            type=request.type,
            amount=request.amount,
            destination=request.destination,
            status=Status.CONFIRMED,
            tier=tier,
            error=None,
            attempts=1,
            idempotency_key=key,
            execute_after_ms=None,
            expires_at_ms=None,
            deadline_at_ms=now_ms + timeout_s(tier, settings) * 1000,
            reference=f"ledger:{txn_id}",
            created_at=now,
            updated_at=now,
            submitted_at=now,
            confirmed_at=now,
        )
        self.reply = idempotency.reply_for(self.transaction)
        self.audit_rows = self._audit_rows()
        self._entries = [audit.row(**entry) for entry in self.audit_rows]
        self.params: dict[str, Any] = {
            "session_id": session_id,
            "agent_id": admission.agent_id,
            "amount": request.amount,
            "destination": request.destination,
            "now": now,
            "key": key,
            "today": now // figures.DAY_S,
            "hour_ago": now - figures.HOUR_S,
            **limit_params(admission.limits),
            **self._row(request, key),
        }

    # -- what the CAS checks ---------------------------------------------------------------

    @property
    def fires_now(self) -> bool:
        """A ``TIME_RESTRICTION`` rule outside its hours fires whatever the figures say."""
        rule = self.rules.get(RuleType.TIME_RESTRICTION)
        if rule is None:
            return False
        restriction: TimeRestriction = rule.params
        return not restriction.allowed_hours.allows((self.now % 86_400) // figures.HOUR_S)

    def _no_rule_fires(self) -> list[str]:
        """Conditions under which no admission or confirmation rule fires for this payment.

        A rule that might fire (its figure would reach a warning or a stop) is left to
        the step path, which counts again under its locks and acts.
        """
        where = []
        rule = self.rules.get(RuleType.HOURLY_RATE)
        if rule is not None:
            rate: HourlyRate = rule.params
            self.params["hourly_max"] = rate.max_tx_per_hour
            where.append(  # fires at max_tx_per_hour earlier ones: count no further than that
                "(SELECT COUNT(*) FROM (SELECT 1 FROM transactions WHERE agent_id = :agent_id"
                " AND created_at > :hour_ago LIMIT :hourly_max) AS last_hour) < :hourly_max"
            )
        rule = self.rules.get(RuleType.DAILY_LIMIT)
        if rule is not None:
            limit: DailyLimit = rule.params
            self.params["daily_warn"] = limit.warn_at()
            self.params["daily_stop"] = limit.stop_at()
            today = (
                "COALESCE((SELECT CASE WHEN day = :today THEN confirmed_today ELSE 0 END"
                " FROM agent_figures WHERE agent_id = :agent_id), 0)"
            )
            open_amount = (
                "(SELECT COALESCE(SUM(amount), 0) FROM transactions WHERE agent_id = :agent_id"
                f" AND status IN {figures.OPEN_STATUSES})"
            )
            where.append(f"{today} + {open_amount} + :amount <= :daily_stop")  # admission
            where.append(f"{today} + :amount < :daily_warn")  # the confirmation reaches nothing
        rule = self.rules.get(RuleType.ANOMALY_PATTERN)
        if rule is not None:
            anomaly: AnomalyPattern = rule.params
            self.params["anomaly_warn"] = anomaly.same_destination_warn
            where.append(
                "(SELECT COUNT(*) FROM transactions WHERE agent_id = :agent_id"
                " AND destination = :destination AND status = 'CONFIRMED'"
                " AND confirmed_at > :hour_ago) + 1 < :anomaly_warn"
            )
        return where

    def _same_rules(self) -> list[str]:
        """The rule rows are the ones the rules were chosen from, at the same versions."""
        rows = self.admission.rows
        self.params["rules_n"] = len(rows)
        where = [
            "(SELECT COUNT(*) FROM auto_stop_rules WHERE scope IN ('*', :agent_id)) = :rules_n"
        ]
        if rows:
            pairs = []
            for i, (rule_id, version) in enumerate(rows):
                self.params[f"rule{i}_id"], self.params[f"rule{i}_version"] = rule_id, version
                pairs.append(f"(:rule{i}_id, :rule{i}_version)")
            where.append(
                "(SELECT COUNT(*) FROM auto_stop_rules WHERE (id, version)"
                f" IN (VALUES {', '.join(pairs)})) = :rules_n"
            )
        return where

    def _conditions(self, balance: str) -> str:
        where = [
            *admits(self.admission.limits),
            "agent_id = :agent_id",
            *self._same_rules(),
            *self._no_rule_fires(),
            f"EXISTS (SELECT 1 FROM {balance} WHERE balance >= :amount)",
        ]
        if self.transaction.idempotency_key is not None:
            where.append(
                "NOT EXISTS (SELECT 1 FROM transactions t"
                " WHERE t.session_id = :session_id AND t.idempotency_key = :key)"
            )
        return " AND ".join(where)

    # -- the statements ----------------------------------------------------------------------

    #: Admitted, reserved and settled at once: ``reserved`` is untouched.
    _CHARGE = CHARGE

    def cas_sql(self) -> str:
        """SQLite: the CAS alone (one writer: what it read stays true until the commit)."""
        balance = "(SELECT balance FROM accounts WHERE agent_id = :agent_id) AS account"
        return f"{self._CHARGE} WHERE {self._conditions(balance)} RETURNING id"

    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        """SQLite: what follows a matched CAS (then its audit rows, :func:`pay`)."""
        return [
            (_INSERT_TXN + " VALUES (" + _TXN_VALUES + ")", self.params),
            (
                _INSERT_LEDGER + " VALUES (:t_id, :agent_id, :amount, :destination, :now)",
                self.params,
            ),
            (_DEBIT, self.params),
            (_FIGURES_SQLITE, self.params),
        ]

    def postgres(self) -> tuple[str, dict[str, Any]]:
        """PostgreSQL: the one statement (see the module doc)."""
        audit_sql, audit_params = self._audit_values()
        chain, insert_audit = audit.append_pg(
            len(self._entries),
            audit_sql,
            when="EXISTS (SELECT 1 FROM txn)",
            after=("paid", "debit", "moved"),  # every other lock first: the head's is the last
        )
        conditions = self._conditions("account")
        statement = (
            # AutoStop's first lock, never waited for; the version locked must be the one
            # this statement's snapshot sees, or what it counts could be short of the truth
            "WITH figures AS (SELECT xmin AS version FROM agent_figures"
            " WHERE agent_id = :agent_id FOR UPDATE SKIP LOCKED),"
            " account AS (SELECT balance FROM accounts WHERE agent_id = :agent_id"
            " FOR UPDATE SKIP LOCKED),"
            f" cas AS ({self._CHARGE} WHERE {conditions} AND EXISTS (SELECT 1 FROM figures"
            " WHERE version = (SELECT xmin FROM agent_figures WHERE agent_id = :agent_id))"
            " RETURNING id),"
            f" txn AS ({_INSERT_TXN} SELECT {_TXN_VALUES} FROM cas RETURNING id),"
            f" paid AS ({_INSERT_LEDGER} SELECT id, :agent_id, :amount, :destination, :now"
            " FROM txn RETURNING transaction_id),"
            f" debit AS ({_DEBIT} AND EXISTS (SELECT 1 FROM txn) RETURNING agent_id),"
            f" moved AS ({_FIGURES} AND EXISTS (SELECT 1 FROM txn) RETURNING agent_id),"
            # last, the audit rows chained under the head's lock: what the statement says
            # it did (INSERT 0 4, or 0)
            f" {chain} {insert_audit} RETURNING transaction_id"
        )
        return _bound(statement, {**self.params, **audit_params})

    def entries(self) -> list[dict[str, Any]]:
        """The payment's audit rows as :func:`racefree.core.audit.row` makes them."""
        return self._entries

    def counted(self) -> None:
        """The moves' metrics, once committed: created, then each move (as the step path)."""
        tier = self.transaction.tier.value
        metrics.created(tier)
        for transition, _ in _MOVED:
            metrics.moved(transition, {"tier": tier})

    def paid(self) -> Paid:
        return Paid(self.transaction, self.reply)

    def _row(self, request: Request, key: str | None) -> dict[str, Any]:
        txn = self.transaction
        stored = key is not None
        return {
            "t_id": txn.id,
            "t_type": request.type,
            "t_status": txn.status.value,
            "t_tier": txn.tier.value,
            "t_request_hash": idempotency.fingerprint(
                {"type": request.type, "amount": request.amount, "destination": request.destination}
            ),
            "t_response_status": self.reply.status if stored else None,
            "t_response_body": json.dumps(self.reply.body, separators=(",", ":"))
            if stored
            else None,
            "t_deadline_at_ms": txn.deadline_at_ms,
            "t_reference": txn.reference,
        }

    def _audit_rows(self) -> list[dict[str, Any]]:
        """The four audit rows, as :func:`racefree.core.audit.record` takes them."""
        txn = self.transaction
        who = {"agent_id": txn.agent_id, "session_id": txn.session_id, "transaction_id": txn.id}
        rows: list[dict[str, Any]] = [
            {
                "event_type": "TRANSACTION_CREATED",
                "at": self.now,
                "severity": Severity.WARNING if txn.tier is Tier.NOTIFY else Severity.INFO,
                "actor": "agent",
                "details": {
                    "amount": str(txn.amount),  # amounts are strings, audit included
                    "tier": txn.tier.value,
                    "destination": txn.destination,
                },
                **who,
            }
        ]
        for t, effects in _MOVED:
            assert t.audit_event is not None
            rows.append(
                {
                    "event_type": t.audit_event,
                    "at": self.now,
                    "severity": t.severity,
                    "actor": "executor",
                    "details": {"from": "|".join(t.sources), "to": t.target, **effects},
                    **who,
                }
            )
        return rows

    def _audit_values(self) -> tuple[str, dict[str, Any]]:
        """PostgreSQL: the four audit rows as a VALUES list and its parameters, with the
        payloads their hashes cover (what the rows share -- time, who, request id -- bound
        once: psycopg parses a statement once, and caches it, only when it is given at most
        50 parameters)."""
        entries = self._entries
        shared = {
            "at": self.now,
            "agent_id": self.transaction.agent_id,
            "session_id": self.transaction.session_id,
            "transaction_id": self.transaction.id,
            "request_id": entries[0]["request_id"],
        }
        params: dict[str, Any] = {"a_request_id": shared["request_id"]}
        for i, entry in enumerate(entries):
            assert all(entry[column] == value for column, value in shared.items())
            for column in _AUDIT_OWN:
                params[f"a{i}_{column}"] = entry[column]
        return _AUDIT_VALUES, {**params, **audit.append_pg_params(entries)}


#: The audit rows of a payment after its creation, in the order it went through them (the
#: step path's order), with what their cascades added (the confirmation settled one session).
_MOVED = [
    (TRANSACTIONS.transitions[Move.CLAIM], {}),
    (TRANSACTIONS.transitions[Move.SUBMIT], {}),
    (TRANSACTIONS.transitions[Move.CONFIRM], {"settled": 1}),
]
#: What differs between the four rows; a row's values in the order of ``audit.COLUMNS``
#: (PostgreSQL types a VALUES column by its first row: the request id may be NULL).
_AUDIT_OWN = ("event_type", "severity", "actor", "details")
_AUDIT_ROW = (
    "({i}, :now, :a{i}_event_type, :a{i}_severity, :a{i}_actor, :agent_id, :session_id, :t_id,"
    " :a{i}_details, CAST(:a_request_id AS TEXT))"
)
_AUDIT_VALUES = "VALUES " + ", ".join(_AUDIT_ROW.format(i=i) for i in range(1 + len(_MOVED)))
assert audit.COLUMNS == (
    "at", "event_type", "severity", "actor", "agent_id", "session_id", "transaction_id",
    "details", "request_id",
)  # fmt: skip


def _bound(sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``sql`` with only the parameters it names: psycopg parses a statement once, and
    caches it, only when it is given at most 50 of them."""
    return sql, {name: params[name] for name in _names(sql)}


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=256)
def _names(sql: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_NAMED.findall(sql)))


_INSERT_TXN = (
    "INSERT INTO transactions (id, agent_id, session_id, type, amount, destination, status, tier,"
    " attempts, idempotency_key, request_hash, response_status, response_body, deadline_at_ms,"
    " reference, created_at, updated_at, submitted_at, confirmed_at)"
)
_TXN_VALUES = (
    ":t_id, :agent_id, :session_id, :t_type, :amount, :destination, :t_status, :t_tier, 1, :key,"
    " :t_request_hash, :t_response_status, :t_response_body, :t_deadline_at_ms, :t_reference,"
    " :now, :now, :now, :now"
)
_INSERT_LEDGER = (
    "INSERT INTO ledger_entries (transaction_id, agent_id, amount, destination, created_at)"
)
_DEBIT = accounts.DEBIT
#: As ``figures.confirmed`` moves them: failures reset, today's sum grows (kept: it
#: saturates at ``amounts.MAX_KEPT``).
_CONFIRMED = (
    "consecutive_failures = 0, confirmed_today = CASE WHEN {t}.day <> :today THEN :amount"
    " WHEN {t}.confirmed_today > :max_kept - :amount THEN :max_kept"
    " ELSE {t}.confirmed_today + :amount END, day = :today, updated_at = :now"
)
_FIGURES = (
    f"UPDATE agent_figures SET {_CONFIRMED.format(t='agent_figures')} WHERE agent_id = :agent_id"
)
_FIGURES_SQLITE = (
    "INSERT INTO agent_figures (agent_id, consecutive_failures, day, confirmed_today, updated_at)"
    " VALUES (:agent_id, 0, :today, :amount, :now) ON CONFLICT (agent_id) DO UPDATE SET "
    + _CONFIRMED.format(t="agent_figures")
)
