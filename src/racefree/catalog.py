"""The whole error catalog, assembled: every layer's codes, walkable in one place.

Each layer declares its codes beside its code (``racefree.<layer>.errors``) and
registers them with the mechanism in :mod:`racefree.core.errors`; importing this
module imports every layer, so :data:`CATALOG` holds every code racefree can
answer with (``docs/errors.md`` is generated from it).
"""

from __future__ import annotations

from racefree.agents.errors import AgentCode
from racefree.autostop.errors import AutoStopCode
from racefree.core.errors import (
    Code,
    ErrorSpec,
    GeneralCode,
    IdempotencyCode,
    LockCode,
    MachineCode,
    registered,
)
from racefree.events.errors import EventCode
from racefree.killswitch.errors import KillSwitchCode
from racefree.operators.errors import AuthCode
from racefree.owners.errors import OwnerCode
from racefree.plans.errors import PlanCode
from racefree.sessions.errors import SessionCode
from racefree.system.errors import SystemCode
from racefree.transactions.errors import TransactionCode

#: Every code -> its spec, in code order.
CATALOG: dict[Code, ErrorSpec] = dict(sorted(registered().items()))

__all__ = [
    "CATALOG",
    "AgentCode",
    "AuthCode",
    "AutoStopCode",
    "EventCode",
    "GeneralCode",
    "IdempotencyCode",
    "KillSwitchCode",
    "LockCode",
    "MachineCode",
    "OwnerCode",
    "PlanCode",
    "SessionCode",
    "SystemCode",
    "TransactionCode",
]
