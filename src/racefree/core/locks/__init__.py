"""Exclusive locks: one API over two backends, with the same exceptions.

* :class:`LeaseLocks` -- portable (SQLite and PostgreSQL) leases in the
  ``locks`` table, each acquisition with a fencing token strictly greater than
  any earlier token for its key; TTL, heartbeat renewal, release by CAS.
* :class:`AdvisoryLocks` -- PostgreSQL advisory locks, transaction-scoped by
  default, session-scoped only on a pinned connection; 64-bit keyed-hash keys.

Both raise :class:`LockBusy` when the lock is held and the caller would not
wait, ``RacefreeError(LOCK_TIMEOUT)`` when a wait ran out, and
``RacefreeError(LOCK_LOST)`` when a lease was taken over. Every acquisition
logs one line on the ``racefree.locks`` logger and feeds the
``racefree_lock_*`` Prometheus metrics (:mod:`.observe`).
"""

from racefree.core.locks.advisory import AdvisoryLocks, AdvisoryUnavailable, HeldAdvisoryLock
from racefree.core.locks.base import Lease, LockBusy
from racefree.core.locks.keys import advisory_key
from racefree.core.locks.lease import Heartbeat, LeaseLocks, fence

__all__ = [
    "AdvisoryLocks",
    "AdvisoryUnavailable",
    "Heartbeat",
    "HeldAdvisoryLock",
    "Lease",
    "LeaseLocks",
    "LockBusy",
    "advisory_key",
    "fence",
]
