"""Executors: what actually moves the money, behind a three-step protocol.

The execution loop (:mod:`racefree.transactions.execution`) calls
``prepare`` while the transaction is ``EXECUTING`` (cancellable), claims
``EXECUTING -> SUBMITTED`` by CAS, and only then calls ``submit`` -- the
irreversible step -- followed by ``confirm``. An executor reports failures as
:class:`ExecutorError` with a :class:`Category`:

* ``TRANSIENT`` -- try again later (the loop backs off exponentially with
  jitter, at most 3 retries);
* ``STALE`` -- what ``prepare`` produced no longer holds (prepare again, once);
* ``PERMANENT`` -- the transaction cannot succeed; it ends ``FAILED`` with the code.

``submit`` must be idempotent per transaction id (a retried submit must not
pay twice), and ``confirm(txn, None)`` must be able to tell whether a
submission landed after a crash lost its reference.

:class:`LedgerExecutor` is the default: it debits the agent's account in the
internal ledger.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from racefree.agents import accounts
from racefree.core.clock import Clock
from racefree.core.db import Database
from racefree.core.errors import Code
from racefree.transactions.errors import TransactionCode
from racefree.transactions.machine import Status, Transaction


class Category(StrEnum):
    TRANSIENT = "transient"
    STALE = "stale"
    PERMANENT = "permanent"


class ExecutorError(Exception):
    """A failed executor step, with the category that decides what the loop does next."""

    def __init__(
        self,
        category: Category,
        code: Code = TransactionCode.EXECUTOR_UNAVAILABLE,
        detail: str = "",
    ) -> None:
        super().__init__(f"{category}: {code}: {detail}")
        self.category = category
        self.code = code
        self.detail = detail


class Executor(Protocol):
    def prepare(self, txn: Transaction) -> Any:
        """Check and get ready; nothing irreversible. The result goes to :meth:`submit`."""
        ...

    def submit(self, txn: Transaction, prepared: Any) -> str:
        """Do it (irreversible, idempotent per ``txn.id``); return a reference."""
        ...

    def confirm(self, txn: Transaction, reference: str | None) -> bool:
        """True when the submission landed, False when it did not."""
        ...


class LedgerExecutor:
    """Debits ``accounts.balance`` by CAS and writes one ``ledger_entries`` row per transaction."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def prepare(self, txn: Transaction) -> int:
        with self.db.read() as tx:
            balance = tx.scalar(
                "SELECT balance FROM accounts WHERE agent_id = :id", {"id": txn.agent_id}
            )
        if balance is None or int(balance) < txn.amount:
            raise _insufficient(balance)
        return int(balance)

    def submit(self, txn: Transaction, prepared: Any) -> str:
        reference = f"ledger:{txn.id}"
        with self.db.write() as tx:
            now = self.clock.now()  # read inside: the write may have waited for its turn
            now_ms = self.clock.now_ms()
            # Fence first: lock the transaction row and insist it is still SUBMITTED and within
            # its deadline. A settlement holds this row while it decides, so a payment either
            # commits before it (and the settlement sees it) or finds it settled and pays nothing.
            fenced = tx.execute(
                "UPDATE transactions SET updated_at = :now WHERE id = :id AND status = :status"
                " AND (deadline_at_ms IS NULL OR deadline_at_ms > :now_ms)",
                {"id": txn.id, "status": Status.SUBMITTED.value, "now": now, "now_ms": now_ms},
            )
            if fenced != 1:
                raise ExecutorError(
                    Category.PERMANENT,
                    TransactionCode.EXECUTOR_UNAVAILABLE,
                    "the transaction is no longer SUBMITTED within its deadline",
                )
            entry = tx.one(
                "INSERT INTO ledger_entries (transaction_id, agent_id, amount, destination,"
                " created_at) VALUES (:id, :agent_id, :amount, :destination, :now)"
                " ON CONFLICT (transaction_id) DO NOTHING RETURNING transaction_id",
                {
                    "id": txn.id,
                    "agent_id": txn.agent_id,
                    "amount": txn.amount,
                    "destination": txn.destination,
                    "now": now,
                },
            )
            if entry is None:  # a retried submit: the first one already paid
                return reference
            # a refused debit rolls the ledger entry back with it
            if accounts.debit(tx, txn.agent_id, txn.amount) is None:
                raise _insufficient(None)
        return reference

    def confirm(self, txn: Transaction, reference: str | None) -> bool:
        with self.db.read() as tx:
            landed = tx.scalar(
                "SELECT COUNT(*) FROM ledger_entries WHERE transaction_id = :id", {"id": txn.id}
            )
        return bool(landed)


def _insufficient(balance: Any) -> ExecutorError:
    detail = "no account" if balance is None else f"balance {balance}"
    return ExecutorError(Category.PERMANENT, TransactionCode.INSUFFICIENT_BALANCE, detail)
