"""Logging of ``racefree serve``: one format for every logger, ours and uvicorn's.

``RACEFREE_LOG_FORMAT=json`` writes one JSON object per line with ``ts`` (RFC 3339
UTC, milliseconds), ``level``, ``logger``, ``msg``, ``request_id`` (of the request
being served, when there is one) and the fields the line was logged with
(``extra=``: the access log's ``method, route, status, duration_ms``, a domain
event's ``event_type, actor, details``...). ``text`` (the default) writes the
same as ``ts LEVEL logger msg key=value ...`` for a terminal.

The code logs through the standard library (``logging.getLogger``); structlog's
``ProcessorFormatter`` renders every record, so there is one format whoever logs.
Request paths, headers and other values a client chose end up in log lines (and
in exception texts). A NUL, CR or LF among them would forge lines or break
parsers, so every control character -- of the message, the fields and the
traceback alike -- is escaped (``\\n``, ``\\x00``...): one record is always one
physical line, in both formats (JSON escapes them itself).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from racefree.core import context

LogFormat = Literal["json", "text"]

#: C0 controls, DEL and C1 controls (tab and newline too: one record, one line).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with every control character written as an escape sequence."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def _timestamp(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    created = record.created if record is not None else None
    moment = datetime.fromtimestamp(created, UTC) if created else datetime.now(UTC)
    event["ts"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return event


def _request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # an explicit request_id (a domain event logged after its commit) wins over the context
    if event.get("request_id") is None:
        event["request_id"] = context.request_id.get()
    return event


def _level(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    event["level"] = record.levelname.lower() if record is not None else method
    if record is not None:
        event["logger"] = record.name
    return event


def _escape_strings(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):  # the traceback too: it stays on its record's line
            event[key] = escape(value)
    return event


_FIRST = ("ts", "level", "logger", "msg", "request_id")


def _ordered(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """The fixed fields first, so lines read alike."""
    return {
        **{k: event[k] for k in _FIRST if k in event},
        **{k: v for k, v in event.items() if k not in _FIRST},
    }


def _text(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    head = f"{event.pop('ts')} {event.pop('level').upper()} {event.pop('logger', '-')} "
    line = head + str(event.pop("msg", ""))
    exc = event.pop("exception", None)
    fields = " ".join(f"{k}={v}" for k, v in event.items() if v is not None)
    line = f"{line} {fields}" if fields else line
    return f"{line} {exc}" if exc else line


def formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter of every handler: JSON lines or text lines."""
    pre_chain: list[Any] = [
        _level,
        structlog.stdlib.ExtraAdder(),
        _request_id,
        _timestamp,
    ]
    render: list[Any] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        structlog.processors.EventRenamer("msg"),
    ]
    if fmt == "json":
        render += [_ordered, structlog.processors.JSONRenderer(default=str)]
    else:
        render += [_escape_strings, _text]
    return structlog.stdlib.ProcessorFormatter(
        processors=render, foreign_pre_chain=pre_chain, pass_foreign_args=False
    )


def configure(fmt: LogFormat = "text", level: str = "info") -> None:
    """Route every logger (racefree's, uvicorn's) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print a second format: let its records reach ours
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
