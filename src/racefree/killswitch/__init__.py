"""The kill switch: the emergency stop (docs/state-machines.md).

* :mod:`.status` -- reading the one persisted row (the guard, health, workers);
* :mod:`.machine` -- the transition table, four CAS moves;
* :mod:`.activation` -- ``activate(tx, reason, actor='auto')`` and its cascade;
* :mod:`.recovery` -- the two-step recovery, behind the master password
  (:mod:`.attempts` counts wrong ones and locks out).
"""

from racefree.killswitch.activation import Activation, activate, activate_now
from racefree.killswitch.status import KillSwitchStatus, is_normal, read

__all__ = ["Activation", "KillSwitchStatus", "activate", "activate_now", "is_normal", "read"]
