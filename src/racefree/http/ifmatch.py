"""``If-Match`` for resources with a ``version``: the header -> the version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from racefree.core.errors import issue, validation_error

IfMatch = Annotated[
    str | None, Header(alias="If-Match", max_length=40, description='"<version>" from ETag')
]


def expected_version(if_match: str | None) -> int | None:
    """``If-Match: "<version>"`` -> the version; ``*`` or absent -> no version check.

    The version goes into the mutation's CAS ``WHERE``; a mismatch is 412.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 18:
        raise validation_error(
            [issue("header", "If-Match", msg="not an ETag")],
            detail='If-Match must be an ETag this API sent ("<version>")',
        )
    return int(raw)
