"""An executor that pays through an external HTTP payment service.

Use it with ``RACEFREE_EXECUTOR=examples.http_executor:factory`` and
``PAYMENTS_URL=http://payments.internal:9000`` (run ``python -m examples.fake_payments 9000``
for a local stand-in). The service's API, and how each racefree step uses it:

* ``prepare`` -- ``POST /quotes {amount, destination}`` -> ``{quote_id}``: checks and
  reserves nothing irreversible (the transaction can still be cancelled);
* ``submit``  -- ``PUT /payments/{transaction_id} {quote_id, amount, destination}``:
  the irreversible step, **idempotent by the transaction id** on the service's side
  (a retried PUT finds the payment it made and answers with it: never paid twice);
* ``confirm`` -- ``GET /payments/{transaction_id}``: did it land? (after a crash lost
  the reference, the id alone finds it).

Errors map onto the executor categories: no answer, 5xx, 429 -> TRANSIENT (retried
with backoff); 409 (the quote expired) -> STALE (prepared again); other 4xx ->
PERMANENT (the transaction ends FAILED; 402 as ``INSUFFICIENT_BALANCE``).
Only the standard library is used, so the example adds no dependency.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from racefree.core.clock import Clock
from racefree.core.db import Database
from racefree.settings import Settings
from racefree.transactions.errors import TransactionCode
from racefree.transactions.executors import Category, ExecutorError
from racefree.transactions.machine import Transaction

TIMEOUT_S = 10.0


class HttpPaymentsExecutor:
    def __init__(self, base_url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def prepare(self, txn: Transaction) -> str:
        quote = self._call("POST", "/quotes", _order(txn))
        return str(quote["quote_id"])

    def submit(self, txn: Transaction, prepared: Any) -> str:
        payment = self._call("PUT", f"/payments/{txn.id}", {**_order(txn), "quote_id": prepared})
        return str(payment["reference"])

    def confirm(self, txn: Transaction, reference: str | None) -> bool:
        try:
            payment = self._call("GET", f"/payments/{txn.id}")
        except ExecutorError as error:
            if error.category is Category.PERMANENT:  # 404: it never landed
                return False
            raise
        return bool(payment.get("status") == "settled")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the operator's configured URL
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise _categorized(error.code, error.read().decode(errors="replace")) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise ExecutorError(Category.TRANSIENT, detail=str(error)) from error


def _order(txn: Transaction) -> dict[str, Any]:
    return {"amount": str(txn.amount), "destination": txn.destination}


def _categorized(status: int, detail: str) -> ExecutorError:
    if status >= 500 or status == 429:
        return ExecutorError(Category.TRANSIENT, detail=f"{status} {detail}")
    if status == 409:
        return ExecutorError(Category.STALE, detail=f"{status} {detail}")
    code = (
        TransactionCode.INSUFFICIENT_BALANCE
        if status == 402
        else TransactionCode.EXECUTOR_UNAVAILABLE
    )
    return ExecutorError(Category.PERMANENT, code, f"{status} {detail}")


def factory(db: Database, clock: Clock, settings: Settings) -> HttpPaymentsExecutor:
    """``RACEFREE_EXECUTOR=examples.http_executor:factory``; the service from ``PAYMENTS_URL``."""
    return HttpPaymentsExecutor(os.environ["PAYMENTS_URL"])
