"""The whole schema: core's tables and every layer's, on one MetaData.

Each layer defines its tables beside its code (``racefree.<layer>.tables``) on
the MetaData of :mod:`racefree.core.schema`; importing this module imports them
all, so Alembic (``migrations/env.py``) and the drift test see every table.
"""

from __future__ import annotations

# importing a layer's tables module defines its tables on the shared MetaData
import racefree.agents.tables
import racefree.autostop.tables
import racefree.console.tables
import racefree.events.tables
import racefree.killswitch.tables
import racefree.operators.tables
import racefree.owners.tables
import racefree.plans.tables
import racefree.sessions.tables
import racefree.system.tables
import racefree.transactions.tables  # noqa: F401
from racefree.core.schema import metadata

__all__ = ["metadata"]
