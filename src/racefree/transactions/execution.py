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
deadline (``deadline_at``, per tier) ends a transaction still running past it
as ``FAILED`` with ``EXECUTION_TIMEOUT``.
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
from racefree.core.errors import ErrorCode, RacefreeError
from racefree.core.machine import Transition
from racefree.core.retry import Backoff
from racefree.core.settings import Settings
from racefree.transactions import moves
from racefree.transactions.executors import Category, Executor, ExecutorError
from racefree.transactions.machine import TRANSACTIONS, Move, Reason, Status, Transaction, load
from racefree.transactions.tiers import timeout_s

log = logging.getLogger("racefree.transactions")

T = TypeVar("T")


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
            return RacefreeError(ErrorCode.TX_NOT_FOUND)
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
        settings: Settings,
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
                "deadline_at": now + timeout_s(txn.tier, self.settings),
                "attempts": Expr("attempts + 1"),
            },
            where=moves.AGENT_ACTIVE,
            classify=_classify_claim(txn),
        ).row
        return Transaction.from_row(row)

    def run(self, txn: Transaction) -> Transaction:
        """Take an ``EXECUTING`` transaction to its end; returns it as it finished."""
        if txn.status is not Status.EXECUTING:
            TRANSACTIONS.check(txn.status, Move.SUBMIT)  # raises the typed 409 for this status
        try:
            prepared = self._call(txn, lambda: self.executor.prepare(txn))
            submitted = self._claim_submitted(txn)
            reference = self._submit(submitted, prepared)
            landed = self._call(submitted, lambda: self.executor.confirm(submitted, reference))
        except _Ended as ended:
            return ended.txn
        with self.db.write() as tx:
            if landed:
                return moves.confirm(tx, submitted, now=self.clock.now(), reference=reference)
        return self._fail(submitted, Reason.NOT_CONFIRMED).txn

    # -- steps -----------------------------------------------------------------

    def _claim_submitted(self, txn: Transaction) -> Transaction:
        now = self.clock.now()
        try:
            with self.db.write() as tx:
                row = TRANSACTIONS.transition(
                    tx,
                    Move.SUBMIT,
                    txn.id,
                    now=now,
                    values={"submitted_at": now},
                    where=Condition.of("deadline_at IS NULL OR deadline_at > :now", now=now),
                    audit_context=moves.context(txn, "executor"),
                ).row
        except RacefreeError:
            current = self.get(txn.id)
            if current.status is Status.EXECUTING:  # the CAS's deadline guard failed
                raise self._fail(current, Reason.EXECUTION_TIMEOUT) from None
            raise _Ended(current) from None  # cancelled meanwhile: nothing was submitted
        return Transaction.from_row(row)

    def _submit(self, txn: Transaction, prepared: Any) -> str:
        state = {"prepared": prepared}

        def prepare_again() -> None:  # a stale submission: prepare once more, then resubmit
            state["prepared"] = self._call(txn, lambda: self.executor.prepare(txn))

        return self._call(
            txn, lambda: self.executor.submit(txn, state["prepared"]), on_stale=prepare_again
        )

    def _call(
        self, txn: Transaction, step: Callable[[], T], on_stale: Callable[[], None] | None = None
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
                if self._past_deadline(txn):
                    raise self._fail(txn, Reason.EXECUTION_TIMEOUT)
                self.sleep(self.policy.delay(transient_retries, self.rng))
                transient_retries += 1
                continue
            if failure.category is Category.STALE and not stale_retried:
                stale_retried = True
                if on_stale is not None:
                    on_stale()
                continue
            raise self._fail(txn, failure.code.value)

    def _past_deadline(self, txn: Transaction) -> bool:
        return txn.deadline_at is not None and self.clock.now() >= txn.deadline_at

    def _fail(self, txn: Transaction, reason: str) -> _Ended:
        """End ``txn`` FAILED; if something else ended it first, that end stands."""
        try:
            with self.db.write() as tx:
                return _Ended(
                    moves.end(
                        tx, Move.FAIL, txn, now=self.clock.now(), reason=reason, actor="executor"
                    )
                )
        except RacefreeError as error:
            if error.code is not ErrorCode.INVALID_STATE_TRANSITION:
                raise
            return _Ended(self.get(txn.id))

    def get(self, txn_id: str) -> Transaction:
        with self.db.read() as tx:
            return load(tx, txn_id)
