"""The ``racefree`` command (typer): local mode on the database, remote mode through the API.

One module per command group (``agents``, ``sessions``, ``transactions``,
``kill_switch``, ``operators``, ``audit``, ``locks``, ``rules``, ``webhooks``,
``events``, ``db``, ``serve``, ``reference``); the machinery each uses once:

* :mod:`.app` -- the command tree and the global options;
* :mod:`.options` -- the global options' values, and how they may follow the command;
* :mod:`.modes` -- local mode (a runtime on the database) or remote mode (a client);
* :mod:`.shapes` -- local answers in the API's shapes, so both modes print alike;
* :mod:`.output` -- tables for people, JSON for scripts;
* :mod:`.exits` / :mod:`.failures` -- one line on stderr and an exit status per class.

docs/cli.md describes the commands, the modes and the exit statuses.
"""

from racefree.cli.runner import main
from racefree.cli.serve import worker_app  # the app factory of `racefree serve --workers N`

__all__ = ["main", "worker_app"]
