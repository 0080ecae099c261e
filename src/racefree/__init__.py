"""racefree: race-free state changes on SQL databases.

The public API, re-exported here::

    from racefree import Database, StateMachine, move, cas_update, RacefreeError, ErrorCode
"""

from __future__ import annotations

__version__ = "0.1.0"

from racefree.core.audit import Severity
from racefree.core.cas import cas_update
from racefree.core.clock import Clock, ManualClock, SystemClock
from racefree.core.db import Database, DatabaseOptions, Dialect, Tx
from racefree.core.errors import CATALOG, Domain, ErrorCode, RacefreeError
from racefree.core.ids import new_id
from racefree.core.machine import AuditContext, StateMachine, Transition, move
from racefree.core.settings import Settings

__all__ = [
    "CATALOG",
    "AuditContext",
    "Clock",
    "Database",
    "DatabaseOptions",
    "Dialect",
    "Domain",
    "ErrorCode",
    "ManualClock",
    "RacefreeError",
    "Settings",
    "Severity",
    "StateMachine",
    "SystemClock",
    "Transition",
    "Tx",
    "__version__",
    "cas_update",
    "move",
    "new_id",
]
