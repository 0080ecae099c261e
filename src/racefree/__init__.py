"""racefree: race-free state changes on SQL databases.

The public API, re-exported here::

    from racefree import Database, StateMachine, move, cas_update, RacefreeError, ErrorCode

Every exception is a :class:`RacefreeError` with a catalog code; the hierarchy
is drawn in :mod:`racefree.core.exceptions`. Conditions (:class:`Condition`)
and SQL-computed values (:class:`Expr`) extend a transition's CAS.
"""

from __future__ import annotations

__version__ = "0.1.0"

from racefree.core.audit import Severity
from racefree.core.cas import cas_update
from racefree.core.clock import Clock, ManualClock, SystemClock
from racefree.core.condition import Condition, Expr
from racefree.core.db import Database, DatabaseOptions, Dialect, Tx
from racefree.core.errors import CATALOG, Domain, ErrorCode, RacefreeError
from racefree.core.exceptions import (
    AdvisoryUnavailable,
    DatabaseError,
    DatabaseInUse,
    LockBusy,
    MachineDefinitionError,
)
from racefree.core.ids import new_id
from racefree.core.machine import AuditContext, StateMachine, Transition, TransitionTable, move
from racefree.core.settings import Settings

__all__ = [
    "CATALOG",
    "AdvisoryUnavailable",
    "AuditContext",
    "Clock",
    "Condition",
    "Database",
    "DatabaseError",
    "DatabaseInUse",
    "DatabaseOptions",
    "Dialect",
    "Domain",
    "ErrorCode",
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
