"""``ETag`` / ``If-Match`` on versioned resources.

Routes that change an agent, a session or the kill switch take the :data:`IfMatch`
header, read it with :func:`expected` in the pipeline's hop (after the guard and
authentication) and call :func:`fence` first in their write transaction (the
version check is the CAS :func:`racefree.core.conditional.fence`); every GET and every change of
such a resource answers its ``ETag: "<version>"`` (:func:`tag`). With
``RACEFREE_REQUIRE_IF_MATCH=true`` a change without ``If-Match`` is 428
``PRECONDITION_REQUIRED``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Header

from racefree.core import conditional
from racefree.core.conditional import Precondition
from racefree.core.db import Tx
from racefree.core.errors import GeneralCode, RacefreeError
from racefree.http.problems import add_response, errors
from racefree.runtime import Runtime

HEADER = "If-Match"
_STRONG = re.compile(r'^"(\d{1,18})"$')
_WEAK = re.compile(r'^W/"[^"]*"$')
_ISSUE = {"loc": ["header", HEADER], "msg": "not an entity tag", "type": "value_error"}


def parse(raw: str) -> Precondition:
    """``*``, or a list of entity tags; weak tags never match (If-Match compares strongly)."""
    versions: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        if part == "*":
            return Precondition(any_version=True)
        strong = _STRONG.match(part)
        if strong:
            versions.append(int(strong.group(1)))
        elif not _WEAK.match(part):
            raise RacefreeError(
                GeneralCode.VALIDATION_ERROR,
                detail='If-Match takes entity tags as this API sends them ("3") or *',
                details={
                    "issues": [
                        {
                            "loc": ["header", HEADER],
                            "msg": "not an entity tag",
                            "type": "value_error",
                        }
                    ]
                },
            )
    return Precondition(tuple(versions))


#: The header parameter of a route that takes ``If-Match`` (the pipeline validates it).
IfMatch = Annotated[
    str | None,
    Header(
        alias=HEADER,
        max_length=1024,
        description='the ETag you read ("3"): the change happens only at that version',
    ),
]


def expected(runtime: Runtime, raw: str | None) -> Precondition | None:
    """The request's precondition (in the pipeline's hop, after the guard and authentication)."""
    if raw is None:
        if runtime.settings.require_if_match:
            raise RacefreeError(GeneralCode.PRECONDITION_REQUIRED)
        return None
    return parse(raw)


def fence(tx: Tx, table: str, key: str, expected: Precondition | None) -> None:
    """The If-Match CAS, first in ``tx`` (nothing when the request sent none)."""
    if expected is not None:
        conditional.fence(tx, table, key, expected)


def tag(tx: Tx, table: str, key: str) -> dict[str, str]:
    """``ETag`` of ``key``'s row as ``tx`` sees it (after the change, in its transaction)."""
    version = conditional.current_version(tx, table, key)
    return {} if version is None else {"ETag": conditional.etag(version)}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """412 and 428 on every operation that takes ``If-Match``."""
    docs = errors(GeneralCode.PRECONDITION_FAILED, GeneralCode.PRECONDITION_REQUIRED)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if any(p.get("name") == HEADER for p in operation.get("parameters", [])):
                for status_code, doc in docs.items():
                    add_response(operation.setdefault("responses", {}), status_code, doc)
    return schema
