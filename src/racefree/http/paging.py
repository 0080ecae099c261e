"""The one pagination convention of every list route: a cursor on ids.

``?after_id=<id>&limit=<n>`` returns up to ``n`` items with ids greater than
``after_id``, in id order, and ``next_after_id``: the last id returned, or the
``after_id`` asked for when nothing was (the audit log's contract, DESIGN 7). A
client pages -- or polls for new items -- by passing ``next_after_id`` back; a
page shorter than ``limit`` is the last one for now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Protocol, TypeVar

from fastapi import Query

MAX_LIMIT = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
#: the cursor of routes whose ids are UUIDv7 strings (the audit log's are integers)
AfterId = Annotated[
    str | None, Query(max_length=36, description="return items after this id (next_after_id)")
]

Id_co = TypeVar("Id_co", covariant=True)
Id = TypeVar("Id")


class _HasId(Protocol[Id_co]):
    @property
    def id(self) -> Id_co: ...


def next_after_id(found: Sequence[_HasId[Id]], after_id: Id) -> Id:
    """The cursor for the next page: the last id returned, else the one asked for."""
    return found[-1].id if found else after_id
