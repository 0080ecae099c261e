"""Optimistic concurrency on a ``version`` column (``ETag`` / ``If-Match``).

The expected version goes into the mutation's CAS ``WHERE`` -- never a read
followed by a compare -- and a missed CAS is classified afterwards in the same
transaction: the row is gone (the caller's not-found error) or its version
moved on (412 ``PRECONDITION_FAILED`` with the current ETag).
"""

from __future__ import annotations

from racefree.core.db import Tx
from racefree.core.errors import ErrorCode, RacefreeError


def etag(version: int) -> str:
    return f'"{version}"'


def where(expected_version: int | None, key: str = "id") -> str:
    """The CAS condition on ``key = :id`` (and ``version = :version`` when one is expected)."""
    condition = f"{key} = :id"
    return condition if expected_version is None else condition + " AND version = :version"


def miss(tx: Tx, table: str, row_id: str, not_found: RacefreeError) -> RacefreeError:
    """Why a versioned CAS on ``table`` matched nothing: ``not_found`` or 412."""
    version = tx.scalar(f"SELECT version FROM {table} WHERE id = :id", {"id": row_id})
    if version is None:
        return not_found
    return RacefreeError(
        ErrorCode.PRECONDITION_FAILED,
        detail=f"{table} row {row_id} is at version {version}, not the one in If-Match",
        details={"current_etag": etag(int(version))},
    )
