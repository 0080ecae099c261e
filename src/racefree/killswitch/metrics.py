"""``racefree_kill_switch_state{state}``: 1 for the current state, 0 for the others.

Set after every committed move of this process, and refreshed from the database
at each scrape (:func:`refresh`), so a move made elsewhere (another server, the
CLI) shows too.
"""

from __future__ import annotations

from prometheus_client import Gauge

from racefree.core.db import Row
from racefree.core.machine import Transition
from racefree.killswitch.status import STATES

KILL_SWITCH_STATE = Gauge(
    "racefree_kill_switch_state",
    "The kill switch's state: 1 for the current one (NORMAL, ACTIVATED, RECOVERING).",
    ["state"],
)


def show(current: str) -> None:
    for state in STATES:
        KILL_SWITCH_STATE.labels(state).set(1 if state == current else 0)


def moved(transition: Transition, row: Row) -> None:
    """The machine's ``on_commit``: the state the committed move reached."""
    show(transition.target)
