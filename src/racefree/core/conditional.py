"""Conditional writes (``If-Match``): the expected version is part of a CAS ``WHERE``.

:func:`fence` is a conditional ``UPDATE ... WHERE key = :key AND version IN
(:expected)`` run as the first write of the caller's transaction; its row count
decides, never a read-then-compare. On PostgreSQL the UPDATE takes the row lock,
so a racing writer with the same ``If-Match`` waits, re-checks the ``WHERE``
against the winner's committed row (whose version moved) and matches nothing:
of N concurrent requests with one ``If-Match`` exactly one proceeds. SQLite
serializes writers. The caller then does its change in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from racefree.core.db import Tx
from racefree.core.errors import GeneralCode, RacefreeError

#: Versioned tables and their key columns (the only names ever put into the SQL).
VERSIONED = {
    "agents": "id",
    "sessions": "id",
    "plan_groups": "id",
    "kill_switch": "scope",
    "auto_stop_rules": "id",
    "webhooks": "id",
}


@dataclass(frozen=True, slots=True)
class Precondition:
    """What ``If-Match`` asks for: any version (``*``) or one of ``versions``."""

    versions: tuple[int, ...] = ()
    any_version: bool = False


def etag(version: int) -> str:
    return f'"{version}"'


def current_version(tx: Tx, table: str, key: str) -> int | None:
    column = VERSIONED[table]
    version = tx.scalar(f"SELECT version FROM {table} WHERE {column} = :key", {"key": key})
    return None if version is None else int(version)


def fence(tx: Tx, table: str, key: str, expected: Precondition) -> None:
    """Hold ``key``'s row at an expected version, or 412 ``PRECONDITION_FAILED``.

    A missing row passes: the domain call that follows answers its own 404.
    """
    column = VERSIONED[table]
    where = f"{column} = :key"
    params: dict[str, Any] = {"key": key}
    if not expected.any_version:
        names = _bind(expected.versions, params)
        where += f" AND version IN ({names})"
    if tx.execute(f"UPDATE {table} SET version = version WHERE {where}", params):
        return
    current = current_version(tx, table, key)
    if current is None:
        return
    raise precondition_failed(current)


def where(expected: Precondition | None, params: dict[str, Any], key: str = "id") -> str:
    """The CAS condition ``key = :id``, and the version's when ``expected`` names versions
    (their binds are added to ``params``): for a domain's own ``UPDATE ... WHERE``."""
    condition = f"{key} = :id"
    if expected is None or expected.any_version:
        return condition
    return f"{condition} AND version IN ({_bind(expected.versions, params)})"


def miss(tx: Tx, table: str, row_id: str, not_found: RacefreeError) -> RacefreeError:
    """Why a CAS built with :func:`where` matched nothing: ``not_found`` or 412."""
    current = current_version(tx, table, row_id)
    return not_found if current is None else precondition_failed(current)


def precondition_failed(current: int) -> RacefreeError:
    return RacefreeError(
        GeneralCode.PRECONDITION_FAILED,
        detail="the resource changed since the version in If-Match",
        details={"current_etag": etag(current)},
        hint="read it again (GET) and retry with its ETag",
    )


def _bind(versions: Sequence[int], params: dict[str, Any]) -> str:
    names = []
    for i, version in enumerate(versions or (-1,)):  # no strong tag: matches nothing
        params[f"v{i}"] = version
        names.append(f":v{i}")
    return ", ".join(names)
