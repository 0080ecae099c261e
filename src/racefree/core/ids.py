"""UUIDv7 ids: time-ordered, so ids sort by creation (RFC 9562)."""

from __future__ import annotations

import uuid_utils


def new_id() -> str:
    return str(uuid_utils.uuid7())
