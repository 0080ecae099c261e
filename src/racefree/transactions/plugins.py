"""Pluggable executors: ``RACEFREE_EXECUTOR`` names the factory of the executor to use.

* ``package.module:factory`` -- imported as written;
* a bare name -- an entry point of the ``racefree.executors`` group, so an
  installed package can offer ``RACEFREE_EXECUTOR=stripe``;
* unset -- :class:`~racefree.transactions.executors.LedgerExecutor`, the internal ledger.

The factory is called as ``factory(db, clock, settings)`` and returns an
:class:`~racefree.transactions.executors.Executor`. The HTTP layer and the
workers build their :class:`~racefree.transactions.service.Transactions` through
:func:`load_executor`, so both pay through the same executor.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, cast

from racefree.core.clock import Clock
from racefree.core.db import Database
from racefree.transactions.executors import Executor, LedgerExecutor
from racefree.transactions.settings import TransactionSettings

ENTRY_POINT_GROUP = "racefree.executors"
PROTOCOL = ("prepare", "submit", "confirm")

Factory = Callable[[Database, Clock, TransactionSettings], Executor]


class ExecutorConfigError(ValueError):
    """``RACEFREE_EXECUTOR`` does not name a usable factory."""


def resolve(spec: str) -> Factory:
    """The factory ``spec`` names; :class:`ExecutorConfigError` with the reason otherwise."""
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ExecutorConfigError(f"RACEFREE_EXECUTOR={spec!r}: {exc}") from exc
    else:
        found = entry_points(group=ENTRY_POINT_GROUP, name=spec)
        if not found:
            installed = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
            raise ExecutorConfigError(
                f"RACEFREE_EXECUTOR={spec!r}: no entry point of that name in "
                f"{ENTRY_POINT_GROUP} (installed: {installed or 'none'}); "
                "or use package.module:factory"
            )
        target = next(iter(found)).load()
    if not callable(target):
        raise ExecutorConfigError(f"RACEFREE_EXECUTOR={spec!r} is not callable")
    return cast(Factory, target)


def load_executor(db: Database, clock: Clock, settings: TransactionSettings) -> Executor:
    """The executor the settings choose (the ledger when none is named)."""
    if not settings.executor:
        return LedgerExecutor(db, clock)
    executor = resolve(settings.executor)(db, clock, settings)
    missing = [
        m for m in ("prepare", "submit", "confirm") if not callable(getattr(executor, m, None))
    ]
    if missing:
        raise ExecutorConfigError(
            f"RACEFREE_EXECUTOR={settings.executor!r} built an object without {missing}"
        )
    return executor
