"""The execution loop: claim, prepare, claim SUBMITTED, submit, confirm -- each status move a CAS.

::

    PENDING|QUEUED --claim--> EXECUTING      (one winner among workers/requests)
        prepare()                            (cancellable: the kill switch may end it here)
    EXECUTING --submit--> SUBMITTED          (CAS *before* the irreversible step)
        submit(), confirm()
    SUBMITTED --confirm--> CONFIRMED         (reserved -> spent)
    any failure --fail--> FAILED             (reservation released)

A transaction the kill switch cancelled while it was being prepared fails the
``EXECUTING -> SUBMITTED`` CAS and is never submitted. Executor errors are
handled by category (:mod:`racefree.transactions.executors`); the execution
deadline (``deadline_at_ms``, per tier) ends a transaction still running past it
as ``FAILED`` with ``EXECUTION_TIMEOUT``.

A SUBMITTED transaction is never ended on a guess: whoever settles it
(:meth:`ExecutionLoop.settle` -- this loop after an error, the stale-release
sweep after a crash) holds its row while it asks the executor whether the
submission landed and decides, in one write transaction. An executor's write
in flight holds the row too (the ledger's fence), so the settlement waits for
it and then sees it; a submission that comes after the settlement finds the row
no longer SUBMITTED, or its deadline gone, and is refused by the fence. A
settle CAS that lost to another settlement answers the row's final state.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from racefree.core.clock import Clock
from racefree.core.condition import Condition, Expr
from racefree.core.db import Database, Tx
from racefree.core.errors import MachineCode, RacefreeError
from racefree.core.machine import Transition
from racefree.core.retry import Backoff
from racefree.transactions import moves
from racefree.transactions.errors import TransactionCode
from racefree.transactions.executors import Category, Executor, ExecutorError
from racefree.transactions.machine import TRANSACTIONS, Move, Reason, Status, Transaction, load
from racefree.transactions.settings import TransactionSettings
from racefree.transactions.tiers import timeout_s

log = logging.getLogger("racefree.transactions")

T = TypeVar("T")

#: What a caller adds to the write that ends a transaction (run, settle, fail), in that
#: write, given the transaction as it ended -- e.g. the reply an Idempotency-Key replays.
Finish = Callable[[Tx, Transaction], None]


def _ended(tx: Tx, txn: Transaction, finish: Finish | None) -> Transaction:
    if finish is not None:
        finish(tx, txn)
    return txn


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how fast transient executor errors are retried."""

    retries: int = 3
    base_s: float = 0.05

    def delay(self, retry: int, rng: Callable[[], float]) -> float:
        """``base * 2**retry``, scaled by a random factor in [0.5, 1.5) so retries spread out."""
        return Backoff(self.base_s, math.inf, jitter=(0.5, 1.5)).delay(retry, rng)


class _Ended(Exception):
    """The transaction reached a status where the loop must stop; carries it."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn.status)
        self.txn = txn


def _classify_claim(txn: Transaction) -> Callable[[Tx, Transition], RacefreeError]:
    """A missed claim: someone else claimed or ended it, or its agent may not spend now."""

    def classify(tx: Tx, t: Transition) -> RacefreeError:
        current = tx.scalar("SELECT status FROM transactions WHERE id = :id", {"id": txn.id})
        if current is None:
            return RacefreeError(TransactionCode.TX_NOT_FOUND)
        if current in t.sources:  # the status matched, so the agent guard failed
            refusal = moves.agent_refusal(tx, txn.agent_id)
            if refusal is not None:
                return refusal
        return RacefreeError(
            t.conflict_for(current),
            details={
                "current": current,
                "requested": t.target,
                "allowed": TRANSACTIONS.targets(current),
            },
        )

    return classify


class ExecutionLoop:
    """Runs transactions through an :class:`Executor`; safe to call from many threads/processes."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: TransactionSettings,
        executor: Executor,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.executor = executor
        self.policy = policy or RetryPolicy(base_s=settings.executor_retry_base_s)
        self.sleep = sleep
        self.rng = rng

    # -- entry points ----------------------------------------------------------

    def start(self, txn: Transaction) -> Transaction:
        """Claim ``PENDING|QUEUED -> EXECUTING`` (409 if someone else did) and run it."""
        with self.db.write() as tx:
            claimed = self.claim(tx, txn, now=self.clock.now())
        return self.run(claimed)

    def claim(self, tx: Tx, txn: Transaction, *, now: int) -> Transaction:
        """The claim CAS alone, in the caller's transaction (a submission claims its own)."""
        row = TRANSACTIONS.transition(
            tx,
            Move.CLAIM,
            txn.id,
            now=now,
            values={
                # the deadline counts from the claim, in milliseconds (it fires at its time)
                "deadline_at_ms": self.clock.now_ms() + timeout_s(txn.tier, self.settings) * 1000,
                "attempts": Expr("attempts + 1"),
            },
            where=moves.AGENT_ACTIVE,
            classify=_classify_claim(txn),
            audit_context=moves.context(txn, "executor"),
        ).row
        return Transaction.from_row(row)

    def run(self, txn: Transaction, *, finish: Finish | None = None) -> Transaction:
        """Take an ``EXECUTING`` transaction to its end; returns it as it finished.

        ``finish`` joins the write that ends it, if this loop makes that write.
        """
        if txn.status is not Status.EXECUTING:
            TRANSACTIONS.check(txn.status, Move.SUBMIT)  # raises the typed 409 for this status
        try:
            prepared = self._call(txn, lambda: self.executor.prepare(txn), finish=finish)
            submitted = self._claim_submitted(txn, finish)
            reference = self._submit(submitted, prepared, finish)
            landed = self._call(
                submitted, lambda: self.executor.confirm(submitted, reference), finish=finish
            )
        except _Ended as ended:
            return ended.txn
        if not landed:
            return self.settle(submitted, Reason.NOT_CONFIRMED, reference=reference, finish=finish)
        try:
            with self.db.write() as tx:
                confirmed = moves.confirm(tx, submitted, now=self.clock.now(), reference=reference)
                return _ended(tx, confirmed, finish)
        except RacefreeError as lost:  # a settlement got there first: its decision stands
            if lost.code is not MachineCode.INVALID_STATE_TRANSITION:
                raise
            return self.get(submitted.id)

    def settle(
        self,
        txn: Transaction,
        reason: str,
        *,
        reference: str | None = None,
        actor: str = "executor",
        only_if_late: bool = False,
        finish: Finish | None = None,
    ) -> Transaction:
        """End a SUBMITTED transaction by what the executor says: CONFIRMED if the
        submission landed, FAILED with ``reason`` if not.

        First it waits for any write holding the row (an executor's payment in
        flight holds it from its fence to its commit); after that nothing more
        can land -- the fence refuses a transaction past its deadline, and
        before its deadline only this loop submits it -- so the executor's
        answer is final, and the decision is a CAS on SUBMITTED. A transaction
        no longer SUBMITTED (or, with ``only_if_late``, not past its deadline)
        is left as it is; so is one the executor cannot answer for. Returns the
        row as it stands after.
        """
        current = self._wait_for_writers(txn.id)
        now = self.clock.now()
        if current.status is not Status.SUBMITTED:
            return current
        if only_if_late and not self._past_deadline(current):
            return current
        try:
            landed = self.executor.confirm(current, reference or current.reference)
        except Exception as exc:  # the outcome stays unknown; a later settlement asks again
            log.warning("cannot settle %s: the executor raised %r", txn.id, exc)
            return current
        try:
            with self.db.write() as tx:
                if landed:
                    decided = moves.confirm(
                        tx, current, now=now, reference=reference or current.reference
                    )
                else:
                    decided = moves.end(tx, Move.FAIL, current, now=now, reason=reason, actor=actor)
                return _ended(tx, decided, finish)
        except RacefreeError as lost:  # another settlement decided first: its decision stands
            if lost.code is not MachineCode.INVALID_STATE_TRANSITION:
                raise
            return self.get(txn.id)

    def _wait_for_writers(self, txn_id: str) -> Transaction:
        """The row once no write holds it (PostgreSQL: a row lock; SQLite: the one writer)."""
        lock = "" if self.db.dialect == "sqlite" else " FOR UPDATE"
        with self.db.write() as tx:
            row = tx.one(f"SELECT * FROM transactions WHERE id = :id{lock}", {"id": txn_id})
        if row is None:
            raise RacefreeError(TransactionCode.TX_NOT_FOUND)
        return Transaction.from_row(row)

    # -- steps -----------------------------------------------------------------

    def _claim_submitted(self, txn: Transaction, finish: Finish | None = None) -> Transaction:
        now = self.clock.now()
        try:
            with self.db.write() as tx:
                row = TRANSACTIONS.transition(
                    tx,
                    Move.SUBMIT,
                    txn.id,
                    now=now,
                    values={"submitted_at": now},
                    where=Condition.of(
                        "deadline_at_ms IS NULL OR deadline_at_ms > :now", now=self.clock.now_ms()
                    ),
                    audit_context=moves.context(txn, "executor"),
                ).row
        except RacefreeError:
            current = self.get(txn.id)
            if current.status is Status.EXECUTING:  # the CAS's deadline guard failed
                raise self._fail(current, Reason.EXECUTION_TIMEOUT, finish) from None
            raise _Ended(current) from None  # cancelled meanwhile: nothing was submitted
        return Transaction.from_row(row)

    def _submit(self, txn: Transaction, prepared: Any, finish: Finish | None = None) -> str:
        state = {"prepared": prepared}

        def prepare_again() -> None:  # a stale submission: prepare once more, then resubmit
            state["prepared"] = self._call(txn, lambda: self.executor.prepare(txn), finish=finish)

        return self._call(
            txn,
            lambda: self.executor.submit(txn, state["prepared"]),
            on_stale=prepare_again,
            finish=finish,
        )

    def _call(
        self,
        txn: Transaction,
        step: Callable[[], T],
        on_stale: Callable[[], None] | None = None,
        *,
        finish: Finish | None = None,
    ) -> T:
        transient_retries = 0
        stale_retried = False
        while True:
            try:
                return step()
            except ExecutorError as error:
                failure = error
            except Exception as exc:  # an executor bug or outage: treat as transient
                log.warning("executor raised %r for transaction %s", exc, txn.id)
                failure = ExecutorError(Category.TRANSIENT, detail=repr(exc))
            if failure.category is Category.TRANSIENT and transient_retries < self.policy.retries:
                if self._past_deadline(txn):  # an earlier try may have landed: _fail asks
                    raise self._fail(txn, Reason.EXECUTION_TIMEOUT, finish)
                self.sleep(self.policy.delay(transient_retries, self.rng))
                transient_retries += 1
                continue
            if failure.category is Category.STALE and not stale_retried:
                stale_retried = True
                if on_stale is not None:
                    on_stale()
                continue
            raise self._fail(txn, failure.code.value, finish)

    def _past_deadline(self, txn: Transaction) -> bool:
        return txn.deadline_at_ms is not None and self.clock.now_ms() >= txn.deadline_at_ms

    def _fail(self, txn: Transaction, reason: str, finish: Finish | None = None) -> _Ended:
        """End ``txn`` FAILED; if something else ended it first, that end stands.

        A SUBMITTED one may have been paid: it is settled by asking, not failed.
        """
        if txn.status is Status.SUBMITTED:
            return _Ended(self.settle(txn, reason, finish=finish))
        try:
            with self.db.write() as tx:
                failed = moves.end(
                    tx, Move.FAIL, txn, now=self.clock.now(), reason=reason, actor="executor"
                )
                return _Ended(_ended(tx, failed, finish))
        except RacefreeError as error:
            if error.code is not MachineCode.INVALID_STATE_TRANSITION:
                raise
            return _Ended(self.get(txn.id))

    def get(self, txn_id: str) -> Transaction:
        """The transaction as committed now (404 ``TX_NOT_FOUND``)."""
        with self.db.read() as tx:
            return load(tx, txn_id)
