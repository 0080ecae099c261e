"""racefree.testing: prove your own code race-free, the way racefree's tests do.

* :func:`race` starts ``n`` callables together on a barrier and keeps every
  outcome; ``race(...).tally()`` counts them by ``"won"`` or error code.
* :func:`http_race` sends ``n`` identical requests together (one connection each).
* :func:`wait_until_blocked` returns once a PostgreSQL statement waits on a lock.
* :func:`start_server` / :class:`Server`: a real ``racefree serve`` on a free
  port; the pytest plugin wraps it as the ``racefree_server`` fixture.
* :class:`DelayProxy`: answers that arrive late, to prove retries replay.

Install with ``pip install racefree[testing]``; the plugin registers itself.
"""

from __future__ import annotations

from racefree.testing.postgres import wait_until_blocked
from racefree.testing.proxy import DelayProxy
from racefree.testing.races import Outcome, Outcomes, http_race, race, tally, tally_responses
from racefree.testing.server import Server, free_port, start_server

__all__ = [
    "DelayProxy",
    "Outcome",
    "Outcomes",
    "Server",
    "free_port",
    "http_race",
    "race",
    "start_server",
    "tally",
    "tally_responses",
    "wait_until_blocked",
]
