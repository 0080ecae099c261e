"""A condition value: an SQL boolean fragment with its own parameters.

Conditions combine with ``&`` (``AND``) and ``|`` (``OR``) without string
surgery at call sites: every condition renames its parameters to names no
other condition can have (``:id`` becomes ``:c12_id``), so two conditions that
both say ``:id`` never collide, and a statement that embeds one keeps its own
parameter names (``:now``, ``:reason``) free.

    where = Condition.of("owner_id = :id", id=owner_id) & Condition.of("closed_at IS NULL")
    tx.execute(f"UPDATE items SET closed_at = :now WHERE {where.sql}", where.bind({"now": now}))
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# ``:name`` but not the PostgreSQL cast ``::type``
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_serial = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Condition:
    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, sql: str, /, **params: Any) -> Condition:
        """A condition whose ``:name`` placeholders are renamed to names unique to it."""
        prefix = f"c{next(_serial)}_"
        names = set(_PARAM.findall(sql))
        missing = names - params.keys()
        if missing:
            raise ValueError(f"no value for {sorted(missing)} in {sql!r}")
        renamed = _PARAM.sub(lambda m: f":{prefix}{m.group(1)}", sql)
        return cls(renamed, {prefix + name: params[name] for name in names})

    def __and__(self, other: Condition) -> Condition:
        return _join(self, "AND", other)

    def __or__(self, other: Condition) -> Condition:
        return _join(self, "OR", other)

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` of the enclosing statement plus this condition's (which cannot collide)."""
        return {**params, **self.params}


#: The condition that is always true (the identity of ``&``).
TRUE = Condition("1 = 1")


def _join(left: Condition, op: str, right: Condition) -> Condition:
    if op == "AND" and left is TRUE:
        return right
    if op == "AND" and right is TRUE:
        return left
    return Condition(f"({left.sql}) {op} ({right.sql})", {**left.params, **right.params})


@dataclass(frozen=True, slots=True)
class Expr:
    """An SQL expression as a column's new value (``Expr("attempts + 1")``), computed in SQL.

    Plain values are bound as parameters; an ``Expr`` is written into the
    statement, so a counter moves by the database's arithmetic, never by a
    value a racing reader computed. Only for fixed expressions written in the
    code, never for input.
    """

    sql: str
