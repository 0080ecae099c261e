"""Limits checked at the edge, before any work (docs/operations.md, "The HTTP edge").

* **Control characters.** A NUL or other control character in the path, a query
  parameter or a header value is refused with 400 ``VALIDATION_ERROR`` before
  routing; in a JSON body string, before the handler runs (free text may keep tab
  and newline). Both engines then see the same request: PostgreSQL cannot store a
  NUL in text, SQLite would store it as-is, and a newline in a path would forge
  log lines.
* **Body size.** :func:`limit_body` wraps ``receive``: a body whose
  ``Content-Length`` exceeds ``RACEFREE_MAX_BODY_BYTES`` is refused at its first
  read without reading a byte, and a body without one is counted as it streams and
  refused the moment it passes the limit. Nothing is read before someone reads
  it: the request pipeline reads bodies only up to the limit, and parses them only
  after the guard and authentication.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope

from racefree.core.errors import GeneralCode, RacefreeError, validation_error

#: C0 controls, DEL and C1 controls: never in a path, a query or an id.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: In JSON body strings (free text) tab and newline may stay.
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: Header values: RFC 9110 allows horizontal tab and nothing else below 0x20.
_CONTROL_IN_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

MESSAGE = "control characters are not allowed here"


def _issue(loc: list[str | int]) -> RacefreeError:
    return validation_error([{"loc": loc, "msg": MESSAGE, "type": "control_character"}])


#: Header names as the API documents them (ASGI hands them over lowercased).
_DOCUMENTED_HEADERS = {
    name.lower(): name
    for name in (
        "Authorization",
        "Idempotency-Key",
        "If-Match",
        "Last-Event-ID",
        "X-Master-Password",
        "X-Owner-Signature",
        "X-Request-ID",
    )
}


def header_name(lowered: str) -> str:
    """``idempotency-key`` -> ``Idempotency-Key``: the spelling of a problem's ``loc``."""
    documented = _DOCUMENTED_HEADERS.get(lowered)
    if documented is not None:
        return documented
    return "-".join(part[:1].upper() + part[1:] for part in lowered.split("-"))


def scope_refusal(scope: Scope) -> RacefreeError | None:
    """400 if the path, the query string or a header value has a control character."""
    if _CONTROL.search(scope["path"]):
        return _issue(["path"])
    query: bytes = scope.get("query_string", b"")
    if query and _CONTROL.search(unquote(query.decode("latin-1").replace("+", " "))):
        return _issue(["query"])
    for name, value in scope.get("headers", ()):
        if _CONTROL_IN_HEADER.search(value):
            return _issue(["header", header_name(name.decode("latin-1"))])
    return None


def check_text(value: Any, loc: list[str | int]) -> None:
    """Raise 400 if any string in the parsed JSON ``value`` (keys too) has a control character."""
    if isinstance(value, str):
        if _CONTROL_IN_TEXT.search(value):
            raise _issue(loc)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, loc)
            check_text(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_text(item, [*loc, index])


class BodyTooLarge(HTTPException):
    """Raised by the wrapped ``receive``; answered 413 ``PAYLOAD_TOO_LARGE``."""

    def __init__(self) -> None:
        super().__init__(413)


def too_large(limit: int) -> RacefreeError:
    return RacefreeError(
        GeneralCode.PAYLOAD_TOO_LARGE,
        details={"max_body_bytes": limit},
        hint="send a smaller body",
    )


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def limit_body(receive: Receive, scope: Scope, limit: int) -> Receive:
    """``receive`` that never hands out more than ``limit`` body bytes (see the module doc)."""
    declared = declared_length(scope)
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        if declared is not None and declared > limit:
            raise BodyTooLarge
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return limited
