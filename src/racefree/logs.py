"""Logging of ``racefree serve``: one format for every logger, ours and uvicorn's.

``RACEFREE_LOG_FORMAT=json`` writes one JSON object per line with ``ts`` (RFC 3339
UTC, milliseconds), ``level``, ``logger``, ``msg``, ``request_id`` (of the request
being served, when there is one) and the fields the line was logged with
(``extra=``: the access log's ``method, route, status, duration_ms``, a domain
event's ``event_type, actor, details``...). ``text`` (the default) writes the
same as ``ts LEVEL logger msg key=value ...`` for a terminal.

The code logs through the standard library (``logging.getLogger``); one
:class:`LineFormatter` renders every record, so there is one format whoever logs.
It renders on the event loop for every request (the access line), so it is
lean: structlog's ``ProcessorFormatter``, which it replaced, copied each record
and ran its processor chain and the stdlib's formatting on top, at 2.1 to 2.4
times the CPU per line (``python -m bench loglines``; bench/RESULTS.md, "stop 24").
Request paths, headers and other values a client chose end up in log lines (and
in exception texts). A NUL, CR or LF among them would forge lines or break
parsers, so every control character -- of the message, the fields and the
traceback alike -- is escaped (``\\n``, ``\\x00``...): one record is always one
physical line, in both formats (JSON escapes them itself).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from racefree.core import context

LogFormat = Literal["json", "text"]

#: C0 controls, DEL and C1 controls (tab and newline too: one record, one line).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with every control character written as an escape sequence."""
    if _CONTROL.search(text) is None:  # nearly every value: a search is cheaper than a sub
        return text
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-12-01T13:58:39.288Z``."""
    second = int(created)
    micros = round((created - second) * 1e6)  # as datetime rounds it, then cut to ms
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    return f"{_second(second)}.{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _second(second: int) -> str:
    # lines come in second by second: formatting the date once a second, not per line
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


#: What every record has: anything else on a record came in ``extra=`` and is a field.
_RECORD_KEYS = frozenset(logging.LogRecord("n", 0, "p", 0, "m", (), None).__dict__) | {
    "message",  # set on the record by any Formatter.format before ours
    "asctime",
}
_FIRST = ("ts", "level", "logger", "msg", "request_id")


class LineFormatter(logging.Formatter):
    """One record, one line: a JSON object or ``ts LEVEL logger msg key=value ...``."""

    def __init__(self, fmt: LogFormat) -> None:
        super().__init__()
        self.as_json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        event = self.fields(record)
        if self.as_json:
            return json.dumps(_ordered(event), default=str)
        return _text({k: escape(v) if isinstance(v, str) else v for k, v in event.items()})

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The line's fields: ts, level, logger, msg, then the record's extras, the request
        id (an explicit ``request_id`` -- a domain event logged after its commit -- wins
        over the request being served) and the traceback."""
        event: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.stack_info:
            event["stack_info"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _RECORD_KEYS:
                event[key] = value
        if event.get("request_id") is None:
            event["request_id"] = context.request_id.get()
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return event


def _ordered(event: dict[str, Any]) -> dict[str, Any]:
    """The fixed fields first, so lines read alike."""
    return {
        **{k: event[k] for k in _FIRST if k in event},
        **{k: v for k, v in event.items() if k not in _FIRST},
    }


def _text(event: dict[str, Any]) -> str:
    head = f"{event.pop('ts')} {event.pop('level').upper()} {event.pop('logger')} "
    line = head + str(event.pop("msg"))
    exc = event.pop("exception", None)
    fields = " ".join(f"{k}={v}" for k, v in event.items() if v is not None)
    line = f"{line} {fields}" if fields else line
    return f"{line} {exc}" if exc else line


def formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter of every handler: JSON lines or text lines."""
    return LineFormatter(fmt)


def configure(fmt: LogFormat = "text", level: str = "info") -> None:
    """Route every logger (racefree's, uvicorn's) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # what no line renders, a record need not look up (the stdlib's own switches, "Optimization"
    # in the logging HOWTO): the caller's file and line, the thread, the process
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print a second format: let its records reach ours
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
