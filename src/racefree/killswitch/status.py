"""Reading the kill switch's state: re-exported from :mod:`racefree.system.kill_switch`.

The reader lives one layer above ``core`` so that entities (``agents.create``,
``agents.activate``) can hold the switch NORMAL without importing this process.
"""

from racefree.system.kill_switch import (
    ACTIVATED,
    GLOBAL_SCOPE,
    GUARD_VIEW_READ,
    NORMAL,
    RECOVERING,
    STATES,
    GuardView,
    KillSwitchStatus,
    guard_view,
    hold_normal,
    is_normal,
    probe_state,
    read,
    system_locked,
)

__all__ = [
    "ACTIVATED",
    "GLOBAL_SCOPE",
    "GUARD_VIEW_READ",
    "NORMAL",
    "RECOVERING",
    "STATES",
    "GuardView",
    "KillSwitchStatus",
    "guard_view",
    "hold_normal",
    "is_normal",
    "probe_state",
    "read",
    "system_locked",
]
