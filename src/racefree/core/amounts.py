"""Amounts: one type everywhere (docs/http-api.md), and a ceiling for the sums the database keeps.

An amount is a string of decimal digits in minor units, ``1 <= amount <=
10^15`` -- the same for transactions, deposits and session limits; no sign,
no leading zero, no exponent. A sum the database keeps (an account balance, a
session's ``reserved`` and ``spent``) is at most :data:`MAX_KEPT` (10^18):
admitting CASes refuse past it, and CHECK constraints back them, so no sum
ever reaches the 64-bit limit (9.2 * 10^18) -- even one more maximal amount
on top stays far below it. On SQLite, an overflowing integer would silently
become a float; the CHECK refuses that too.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import StringConstraints

MAX_AMOUNT = 10**15
MAX_KEPT = 10**18
#: ``1`` .. ``10^15``, written canonically.
PATTERN = r"^(?:[1-9][0-9]{0,14}|1000000000000000)$"
_AMOUNT = re.compile(PATTERN)
RANGE_MESSAGE = f'an amount is a string of an integer from 1 to {MAX_AMOUNT}, e.g. "1000"'

#: The API's amount field (pydantic): a string, validated and documented by its pattern.
Amount = Annotated[str, StringConstraints(pattern=PATTERN)]


def is_amount(value: Any) -> bool:
    """Whether ``value`` is an amount as the API writes it (a canonical string)."""
    return isinstance(value, str) and _AMOUNT.fullmatch(value) is not None


def in_range(amount: int) -> bool:
    """Whether an integer amount is within ``1 .. 10^15`` (for library callers)."""
    return 0 < amount <= MAX_AMOUNT


def kept_check(column: str) -> str:
    """The CHECK condition for a kept sum ``column``: ``0 <= column <= 10^18``."""
    return f"{column} >= 0 AND {column} <= {MAX_KEPT}"
