"""``Idempotency-Key`` (IETF draft ``httpapi-idempotency-key-header``) for submissions.

The key is claimed by the submission's own INSERT (``UNIQUE (session_id,
idempotency_key)``, ``ON CONFLICT DO NOTHING``), so two requests with one key
can never both create a transaction: on PostgreSQL the second INSERT waits for
the first to commit, on SQLite writes are serialized. The loser looks at the
winner's row:

* a different request body (fingerprint) -> 422 ``IDEMPOTENCY_KEY_MISMATCH``;
* no stored response yet, transaction still running -> 409 ``IDEMPOTENCY_KEY_IN_USE``
  (retryable, ``Retry-After``);
* a stored response -> that response, replayed as is.

The response is stored on the transaction row once it is known (at
submission for queued tiers, after execution for the others). A submission
refused by the session's limits rolls back its INSERT, so the key stays free.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from racefree.core import context
from racefree.core.db import Row, Tx
from racefree.core.errors import (
    IdempotencyCode,
    RacefreeError,
    find,
    issue,
    problem,
    spec_of,
    validation_error,
)
from racefree.transactions.errors import TransactionCode
from racefree.transactions.machine import Status, Transaction

RETRY_AFTER_S = 1
MAX_KEY_LENGTH = 255


def check_key(key: str) -> str:
    """``key`` if usable, else 400 ``VALIDATION_ERROR`` (docs/http-api.md): never silently ignored.

    Usable: 1 to 255 printable ASCII characters (space allowed inside). An
    empty key used to be dropped, so every retry created another transaction.
    """
    if not key.strip():
        problem_text = "the key is empty"
    elif len(key) > MAX_KEY_LENGTH:
        problem_text = f"the key is longer than {MAX_KEY_LENGTH} characters"
    elif not all(" " <= ch <= "~" for ch in key):
        problem_text = "the key may hold printable ASCII characters only"
    else:
        return key
    raise validation_error([issue("header", "Idempotency-Key", msg=problem_text)])


@dataclass(frozen=True, slots=True)
class Reply:
    """A submission's HTTP answer: status and JSON body (a problem document when >= 400)."""

    status: int
    body: dict[str, Any]


def fingerprint(request: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the validated request body."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def stored(row: Row) -> Reply | None:
    if row.get("response_status") is None:
        return None
    return Reply(int(row["response_status"]), json.loads(row["response_body"]))


def existing(tx: Tx, session_id: str, key: str, request_hash: str) -> Reply:
    """What a request reusing ``key`` gets: the stored reply, or why it cannot have one yet."""
    row = tx.one(
        "SELECT * FROM transactions WHERE session_id = :sid AND idempotency_key = :key",
        {"sid": session_id, "key": key},
    )
    if row is None:  # pragma: no cover - the INSERT just conflicted with this row
        raise RacefreeError(IdempotencyCode.IDEMPOTENCY_KEY_IN_USE, retry_after=RETRY_AFTER_S)
    if row["request_hash"] != request_hash:
        raise RacefreeError(
            IdempotencyCode.IDEMPOTENCY_KEY_MISMATCH,
            details={"transaction_id": row["id"]},
            hint="use a new Idempotency-Key for a different request",
        )
    reply = stored(row)
    if reply is not None:
        return reply
    transaction = Transaction.from_row(row)
    if transaction.finished:  # its request died before storing the reply; answer from the row
        return reply_for(transaction)
    raise RacefreeError(
        IdempotencyCode.IDEMPOTENCY_KEY_IN_USE,
        details={"transaction_id": row["id"]},
        retry_after=RETRY_AFTER_S,
    )


def store(tx: Tx, transaction_id: str, reply: Reply) -> None:
    """Keep ``reply`` for replays (first writer wins; a reply is never replaced)."""
    tx.execute(
        "UPDATE transactions SET response_status = :status, response_body = :body"
        " WHERE id = :id AND response_status IS NULL",
        {
            "id": transaction_id,
            "status": reply.status,
            "body": json.dumps(reply.body, separators=(",", ":")),
        },
    )


def reply_for(txn: Transaction) -> Reply:
    """The answer to a submission that got as far as ``txn``.

    Queued: 202 with the transaction. Finished: 200 with it -- except a
    transaction that FAILED, which answers with its catalog error (e.g. 400
    ``INSUFFICIENT_BALANCE``), or 503 ``EXECUTOR_UNAVAILABLE`` for a timeout.
    Still running (its outcome unknown): 503 ``EXECUTOR_UNAVAILABLE`` with the
    transaction id and its current status, never a final status that may be false.
    """
    if txn.status is Status.QUEUED:
        return Reply(202, txn.to_public())
    if not txn.finished:  # submitted, and the executor cannot tell yet: say so, never guess
        unknown = {"transaction_id": txn.id, "status": txn.status.value}
        return Reply(
            spec_of(TransactionCode.EXECUTOR_UNAVAILABLE).status,
            problem(
                TransactionCode.EXECUTOR_UNAVAILABLE,
                details=unknown,
                request_id=context.request_id.get(),
            ),
        )
    if txn.status is not Status.FAILED:
        return Reply(200, txn.to_public())
    details = {"transaction_id": txn.id, "status": txn.status.value, "reason": txn.error}
    found = find(txn.error)  # a code stored by this or another process
    code = found.code if found else TransactionCode.EXECUTOR_UNAVAILABLE
    return Reply(
        spec_of(code).status, problem(code, details=details, request_id=context.request_id.get())
    )
