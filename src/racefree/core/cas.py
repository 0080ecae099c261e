"""Compare-and-swap: a conditional UPDATE whose row count says who won.

:func:`cas_update` runs ``UPDATE ... WHERE <expected state> RETURNING ...``.
One row back: the caller won and gets the row as it now is. No row: the
caller-supplied classifier runs in the *same* transaction -- typically one
SELECT -- and returns the catalog error that says why (not found, wrong state,
lost the race), which is raised. A CAS never reads first and writes after.
"""

from __future__ import annotations

from collections.abc import Callable

from racefree.core.db import Params, Row, Tx
from racefree.core.errors import RacefreeError

Classifier = Callable[[Tx], RacefreeError]


def cas_update(
    tx: Tx,
    update_sql: str,
    params: Params,
    *,
    classify: Classifier,
    returning: str = "*",
) -> Row:
    """Run the guarded UPDATE; return the updated row or raise ``classify(tx)``.

    ``update_sql`` is an UPDATE without a RETURNING clause whose WHERE names
    exactly one row and the state it must be in.
    """
    row = tx.one(f"{update_sql} RETURNING {returning}", params)
    if row is None:
        raise classify(tx)
    return row
