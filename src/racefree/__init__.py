"""racefree: race-free state changes on SQL databases.

The public API, re-exported here::

    from racefree import Database, StateMachine, move, cas_update, RacefreeError, Code

Every exception is a :class:`RacefreeError` with a catalog code; the hierarchy
is drawn in :mod:`racefree.core.exceptions`. Conditions (:class:`Condition`)
and SQL-computed values (:class:`Expr`) extend a transition's CAS.

The re-exports load on first use (PEP 562), so ``import racefree.client`` --
the HTTP client, which needs only httpx, pydantic and tenacity -- never pulls
in the server's dependencies (SQLAlchemy, FastAPI, psycopg) through this package.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from racefree.catalog import CATALOG
    from racefree.core.audit import Severity
    from racefree.core.cas import cas_update
    from racefree.core.clock import Clock, ManualClock, SystemClock
    from racefree.core.condition import Condition, Expr
    from racefree.core.db import Database, DatabaseOptions, Dialect, Tx
    from racefree.core.errors import Code, ErrorSpec, RacefreeError
    from racefree.core.exceptions import (
        AdvisoryUnavailable,
        DatabaseError,
        DatabaseInUse,
        LockBusy,
        MachineDefinitionError,
    )
    from racefree.core.ids import new_id
    from racefree.core.machine import AuditContext, StateMachine, Transition, TransitionTable, move
    from racefree.settings import Settings

_EXPORTS = {
    "Severity": "racefree.core.audit",
    "cas_update": "racefree.core.cas",
    "Clock": "racefree.core.clock",
    "ManualClock": "racefree.core.clock",
    "SystemClock": "racefree.core.clock",
    "Condition": "racefree.core.condition",
    "Expr": "racefree.core.condition",
    "Database": "racefree.core.db",
    "DatabaseOptions": "racefree.core.db",
    "Dialect": "racefree.core.db",
    "Tx": "racefree.core.db",
    "CATALOG": "racefree.catalog",
    "Code": "racefree.core.errors",
    "ErrorSpec": "racefree.core.errors",
    "RacefreeError": "racefree.core.errors",
    "AdvisoryUnavailable": "racefree.core.exceptions",
    "DatabaseError": "racefree.core.exceptions",
    "DatabaseInUse": "racefree.core.exceptions",
    "LockBusy": "racefree.core.exceptions",
    "MachineDefinitionError": "racefree.core.exceptions",
    "new_id": "racefree.core.ids",
    "AuditContext": "racefree.core.machine",
    "StateMachine": "racefree.core.machine",
    "Transition": "racefree.core.machine",
    "TransitionTable": "racefree.core.machine",
    "move": "racefree.core.machine",
    "Settings": "racefree.settings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'racefree' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "CATALOG",
    "AdvisoryUnavailable",
    "AuditContext",
    "Clock",
    "Code",
    "Condition",
    "Database",
    "DatabaseError",
    "DatabaseInUse",
    "DatabaseOptions",
    "Dialect",
    "ErrorSpec",
    "Expr",
    "LockBusy",
    "MachineDefinitionError",
    "ManualClock",
    "RacefreeError",
    "Settings",
    "Severity",
    "StateMachine",
    "SystemClock",
    "Transition",
    "TransitionTable",
    "Tx",
    "__version__",
    "cas_update",
    "move",
    "new_id",
]
