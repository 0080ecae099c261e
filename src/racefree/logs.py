"""Log output for ``racefree serve``: one physical line per record, control characters escaped.

Request paths, headers and other values a client chose end up in log messages
(and in exception texts). A NUL, CR or LF among them would forge log lines or
break parsers, so every control character of a formatted record -- message,
arguments and traceback alike -- is escaped (``\\n``, ``\\x00``...). A traceback
thus stays on its record's line, like in JSON logs.
"""

from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def escape(text: str) -> str:
    """``text`` with every control character written as an escape sequence."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


class EscapingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record))


def configure(level: str) -> None:
    """Route every logger (uvicorn's too) through one escaping handler on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
