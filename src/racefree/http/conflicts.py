"""``racefree_conflicts_total{code}``: every 409 and 412 answered, by catalog code.

The headline figure of a race-free system: each one is a loser told exactly why
instead of a lost update. Label values are catalog codes (a closed set).
"""

from __future__ import annotations

from prometheus_client import Counter

from racefree.core.errors import RacefreeError

CONFLICTS = Counter(
    "racefree_conflicts_total",
    "Requests answered 409 or 412, by catalog code.",
    ["code"],
)

CONFLICT_STATUSES = frozenset({409, 412})


def count(error: RacefreeError) -> None:
    if error.status in CONFLICT_STATUSES:
        CONFLICTS.labels(error.code.value).inc()
