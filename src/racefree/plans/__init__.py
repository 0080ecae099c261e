"""Plan groups: a schedule whose plan generation never runs twice at once.

* :mod:`.groups` -- create a group (title, period, items with units), read it and its plans.
* :mod:`.spread` -- the deterministic spreading of each item's units over the period's days.
* :mod:`.generation` -- lock (lease, before reading the group) -> read -> compute (and the
  simulated latency) -> one fenced write -> release. A holder whose lease was taken over
  writes nothing (``LOCK_LOST``); the loser of a race gets ``PLAN_GENERATION_IN_PROGRESS``.
"""

from racefree.plans.generation import Generated, Generator, Prepared
from racefree.plans.groups import (
    Item,
    Plan,
    PlanGroup,
    create,
    get,
    list_groups,
    lock_key,
    owner_of,
    plans,
    validate,
)
from racefree.plans.spread import spread

__all__ = [
    "Generated",
    "Generator",
    "Item",
    "Plan",
    "PlanGroup",
    "Prepared",
    "create",
    "get",
    "list_groups",
    "lock_key",
    "owner_of",
    "plans",
    "spread",
    "validate",
]
