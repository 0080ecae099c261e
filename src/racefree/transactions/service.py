"""The transactions domain as one object: submit, approve, reject, read, and the sweeps.

:class:`Transactions` wires the submission, the execution loop and the
executor together for the HTTP layer, the workers and tests. Every method
opens its own short write transactions; none is held across an executor call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from racefree.core.clock import Clock
from racefree.core.condition import Condition
from racefree.core.db import Database, Tx
from racefree.core.errors import RacefreeError
from racefree.transactions import approvals, idempotency, instant, moves, submission
from racefree.transactions.errors import TransactionCode
from racefree.transactions.execution import ExecutionLoop
from racefree.transactions.executors import Executor
from racefree.transactions.idempotency import Reply
from racefree.transactions.machine import Move, Reason, Status, Tier, Transaction
from racefree.transactions.plugins import load_executor
from racefree.transactions.settings import TransactionSettings
from racefree.transactions.submission import Refused, Request
from racefree.transactions.tiers import RUN_NOW, tier_for

log = logging.getLogger("racefree.transactions")

SWEEP_BATCH = 100
_STILL_LATE = "deadline_at_ms <= :late_at"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A submission's result: the reply to send, and whether it is a replay."""

    reply: Reply
    replayed: bool
    transaction_id: str | None = None


class Transactions:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: TransactionSettings,
        executor: Executor | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.executor = executor or load_executor(db, clock, settings)
        self.admissions = instant.Admissions()
        self.loop = ExecutionLoop(db, clock, settings, self.executor, sleep=sleep)

    @property
    def in_database(self) -> bool:
        """Whether executing is database work only (the ledger executor on this database):
        then a submission neither calls out nor waits on anything but the database."""
        return instant.ledger(self.executor, self.db)

    # -- requests --------------------------------------------------------------

    def submit(
        self, session_id: str, request: Request, *, idempotency_key: str | None = None
    ) -> Outcome:
        """Create, admit and (INSTANT/NOTIFY) execute a transaction.

        A run-now transaction is claimed (``PENDING -> EXECUTING``) in its
        submission's own write transaction: one commit fewer on the hot path,
        and nothing else can claim a row no one else has seen yet.
        """
        now_ms = self.clock.now_ms()
        now = now_ms // 1000
        tier = tier_for(request.amount, self.settings)
        if tier in RUN_NOW and self.in_database:
            paid = instant.pay(
                self.db,
                self.settings,
                self.admissions,
                session_id=session_id,
                request=request,
                tier=tier,
                idempotency_key=idempotency_key,
                now=now,
                now_ms=now_ms,
            )
            if paid is not None:
                return Outcome(paid.reply, replayed=False, transaction_id=paid.transaction.id)
            # nothing written: the step path's writes and executor may wait, never on the
            # HTTP pipeline's event loop (served again in a worker thread)
            self.db.waits_ahead()
        with self.db.write() as tx:
            result = submission.submit(
                tx,
                self.settings,
                session_id=session_id,
                request=request,
                idempotency_key=idempotency_key,
                now=now,
                now_ms=now_ms,
            )
            if isinstance(result, Transaction) and result.tier in RUN_NOW:
                result = self.loop.claim(tx, result, now=now)
        if isinstance(result, Refused):
            raise result.error  # after the commit: the rule's action stays
        if isinstance(result, Reply):
            return Outcome(result, replayed=True)
        if result.tier not in RUN_NOW:
            return Outcome(idempotency.reply_for(result), replayed=False, transaction_id=result.id)
        kept = _KeptReply() if idempotency_key is not None else None
        self.db.release()  # no connection held while the executor works
        txn = self.loop.run(result, finish=kept)
        reply = idempotency.reply_for(txn)
        if kept is not None and not kept.stored and txn.finished:  # ended by someone else
            with self.db.write() as tx:
                idempotency.store(tx, txn.id, reply)
        return Outcome(reply, replayed=False, transaction_id=txn.id)

    def approve(self, txn_id: str, signature: str | None) -> Transaction:
        """The owner's approval; the transaction then executes at once."""
        with self.db.write() as tx:
            txn = approvals.approve(
                tx,
                txn_id,
                signature,
                self.settings,
                now=self.clock.now(),
                now_ms=self.clock.now_ms(),
            )
        self.db.release()  # no connection held while the executor works
        return self.loop.run(txn)

    def reject(self, txn_id: str, *, actor: str) -> Transaction:
        with self.db.write() as tx:
            return approvals.reject(tx, txn_id, now=self.clock.now(), actor=actor)

    def expire(self, txn_id: str) -> Transaction:
        with self.db.write() as tx:
            return approvals.expire(tx, txn_id, now=self.clock.now(), now_ms=self.clock.now_ms())

    def get(self, txn_id: str, *, agent_id: str | None = None) -> Transaction:
        """One transaction; with ``agent_id``, only if it is that agent's (else 404)."""
        txn = self.loop.get(txn_id)
        if agent_id is not None and txn.agent_id != agent_id:
            raise RacefreeError(TransactionCode.TX_NOT_FOUND)
        return txn

    def find(
        self,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        status: Status | None = None,
        tier: Tier | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Transaction]:
        """Transactions in creation order (ids are UUIDv7), after ``after_id``, filtered."""
        sql = "SELECT * FROM transactions WHERE 1 = 1"
        for column, value in (
            ("agent_id", agent_id),
            ("session_id", session_id),
            ("status", status and status.value),
            ("tier", tier and tier.value),
        ):
            if value is not None:
                sql += f" AND {column} = :{column}"
        if after_id is not None:
            sql += " AND id > :after_id"
        sql += " ORDER BY id LIMIT :limit"
        params = {
            "agent_id": agent_id,
            "session_id": session_id,
            "status": status and status.value,
            "tier": tier and tier.value,
            "after_id": after_id,
            "limit": limit,
        }
        with self.db.read() as tx:
            return [Transaction.from_row(r) for r in tx.all(sql, params)]

    def count(self, statuses: tuple[Status, ...], *, tier: Tier | None = None) -> int:
        """How many transactions are in one of ``statuses`` (and of ``tier``, when given)."""
        names = {f"s{i}": s.value for i, s in enumerate(statuses)}
        listed = ", ".join(f":{n}" for n in names)
        sql = f"SELECT COUNT(*) FROM transactions WHERE status IN ({listed})"
        if tier is not None:
            sql += " AND tier = :tier"
        with self.db.read() as tx:
            return int(tx.scalar(sql, {**names, "tier": tier and tier.value}))

    # -- sweeps (the background workers call these) ------------------------------

    def run_due(self, limit: int = SWEEP_BATCH) -> int:
        """Execute DELAY transactions whose ``execute_after_ms`` has come; how many ran."""
        due = self._select(
            # a suspended agent's due work waits; picking it would block the batch forever
            "status = :queued AND tier = :tier AND execute_after_ms <= :now_ms"
            f" AND {moves.AGENT_ACTIVE.sql}"
            " ORDER BY execute_after_ms",
            {"queued": Status.QUEUED.value, "tier": Tier.DELAY.value},
            limit,
        )
        # another worker or the kill switch may get one first
        return _sweep(due, self.loop.start, "skipped due transaction")

    def expire_due(self, limit: int = SWEEP_BATCH) -> int:
        """``QUEUED -> EXPIRED`` for APPROVAL transactions past ``expires_at``."""
        due = self._select(
            "status = :queued AND tier = :tier AND expires_at_ms <= :now_ms ORDER BY expires_at_ms",
            {"queued": Status.QUEUED.value, "tier": Tier.APPROVAL.value},
            limit,
        )
        # approved or rejected meanwhile: skipped
        return _sweep(due, lambda txn: self.expire(txn.id), "did not expire")

    def release_stale(self, limit: int = SWEEP_BATCH) -> int:
        """End transactions still running past their deadline (their process died).

        PENDING/EXECUTING ones were never submitted: FAILED, reservation
        released. SUBMITTED ones are settled by asking the executor whether the
        submission landed: CONFIRMED if it did, FAILED if not.
        """
        stale = self._select(
            "status IN (:pending, :executing, :submitted) AND deadline_at_ms <= :now_ms"
            " ORDER BY deadline_at_ms",
            {
                "pending": Status.PENDING.value,
                "executing": Status.EXECUTING.value,
                "submitted": Status.SUBMITTED.value,
            },
            limit,
        )
        # moved on meanwhile: skipped
        return _sweep(stale, self._settle_stale, "did not release")

    def _settle_stale(self, txn: Transaction) -> None:
        now = self.clock.now()
        if txn.status is Status.SUBMITTED:  # asked and decided holding the row
            self.loop.settle(txn, Reason.NOT_CONFIRMED, actor="stale-release", only_if_late=True)
            return
        # a claim since the SELECT has moved the deadline: leave it
        still_late = Condition.of(_STILL_LATE, late_at=self.clock.now_ms())
        with self.db.write() as tx:
            moves.end(
                tx,
                Move.FAIL,
                txn,
                now=now,
                reason=Reason.EXECUTION_TIMEOUT,
                actor="stale-release",
                where=still_late,
            )

    def _select(self, where: str, params: dict[str, object], limit: int) -> list[Transaction]:
        with self.db.read() as tx:
            rows = tx.all(
                f"SELECT * FROM transactions WHERE {where} LIMIT :limit",
                {**params, "now_ms": self.clock.now_ms(), "limit": limit},
            )
        return [Transaction.from_row(r) for r in rows]


class _KeptReply:
    """Keeps the reply an Idempotency-Key replays in the write that ends the transaction:
    the outcome and its reply commit together (one commit fewer)."""

    def __init__(self) -> None:
        self.stored = False

    def __call__(self, tx: Tx, ended: Transaction) -> None:
        if ended.finished:
            idempotency.store(tx, ended.id, idempotency.reply_for(ended))
            self.stored = True


def _sweep(batch: list[Transaction], act: Callable[[Transaction], object], skipped: str) -> int:
    """The one sweep loop: ``act`` on each, counting successes; a lost race is logged, not fatal."""
    done = 0
    for txn in batch:
        try:
            act(txn)
            done += 1
        except RacefreeError as error:
            log.info("%s %s: %s", skipped, txn.id, error.code)
    return done
