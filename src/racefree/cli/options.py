"""The global options, and how they may come after the command too.

``--url``, ``--token``, ``--database-url`` and ``--json``/``--table`` are
options of the root command, so click accepts them only before the command
name. :func:`hoist` moves them to the front wherever they appear, reading the
command tree to know which other options take a value (so the ``--json`` in
``--reason --json`` stays the reason). Everything after ``--`` is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

URL_ENV = "RACEFREE_URL"
TOKEN_ENV = "RACEFREE_TOKEN"  # noqa: S105 - the variable's name

#: global option -> whether it takes a value
GLOBAL_OPTIONS: dict[str, bool] = {
    "--url": True,
    "--token": True,
    "--database-url": True,
    "--json": False,
    "--table": False,
}


@dataclass(frozen=True, slots=True)
class Globals:
    """The global options as given (``None``: not on the command line)."""

    url: str | None = None
    token: str | None = None
    database_url: str | None = None
    json: bool | None = None  # None: JSON when stdout is not a terminal

    @property
    def server(self) -> str | None:
        """The server to talk to (remote mode): ``--url``, else ``$RACEFREE_URL`` unless
        ``--database-url`` asks for local mode."""
        if self.url:
            return self.url
        if self.database_url:
            return None
        return os.environ.get(URL_ENV) or None

    @property
    def credential(self) -> str | None:
        return self.token or os.environ.get(TOKEN_ENV) or None


def hoist(command: Any, args: Sequence[str]) -> list[str]:
    """``args`` with every global option (and its value) moved before the command."""
    front: list[str] = []
    rest: list[str] = []
    current = command
    words = list(args)
    i = 0
    while i < len(words):
        arg = words[i]
        if arg == "--":
            rest.extend(words[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            takes = GLOBAL_OPTIONS[name] and "=" not in arg
            front.extend(words[i : i + 1 + int(takes)])
            i += 1 + int(takes)
            continue
        rest.append(arg)
        if arg.startswith("-") and arg != "-":
            if "=" not in arg and _takes_value(current, name) and i + 1 < len(words):
                rest.append(words[i + 1])
                i += 1
        else:
            current = _subcommand(current, arg)
        i += 1
    return front + rest


def _takes_value(command: Any, option: str) -> bool:
    for param in getattr(command, "params", ()):
        if option in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            return bool(
                getattr(param, "param_type_name", "") == "option"
                and not getattr(param, "is_flag", False)
                and not getattr(param, "count", False)
            )
    return False


def _subcommand(command: Any, name: str) -> Any:
    """The subcommand ``name`` of a group; a command's positional argument leaves it."""
    commands = getattr(command, "commands", None)
    if isinstance(commands, dict) and name in commands:
        return commands[name]
    return command
