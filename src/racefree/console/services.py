"""The domain services a console route needs, built once per app."""

from __future__ import annotations

import threading

from fastapi import Request

from racefree.console.web import runtime_of
from racefree.core.locks import LeaseLocks
from racefree.plans import Generator
from racefree.transactions.service import Transactions

_lock = threading.Lock()


def transactions(request: Request) -> Transactions:
    with _lock:
        service: Transactions | None = getattr(request.app.state, "console_transactions", None)
        if service is None:
            runtime = runtime_of(request)
            service = Transactions(runtime.db, runtime.clock, runtime.settings)
            request.app.state.console_transactions = service
        return service


def generator(request: Request) -> Generator:
    """Plan generation; the lease lock lives in the database, so this shares it with the API."""
    with _lock:
        found: Generator | None = getattr(request.app.state, "console_generator", None)
        if found is None:
            runtime = runtime_of(request)
            found = Generator(
                runtime.db,
                runtime.clock,
                LeaseLocks(runtime.db, runtime.clock),
                ttl_s=runtime.settings.lock_ttl_s,
                delay_ms=runtime.settings.plan_generation_delay_ms,
            )
            request.app.state.console_generator = found
        return found
