"""``system_settings``: the one key/value store of server state (one home for its SQL).

Values that must be the same for every process (the master password hash, the
successor-token key, first-start claims) are written once, first writer wins
(``INSERT ... ON CONFLICT DO NOTHING``), and read back, so racing processes agree.
"""

from __future__ import annotations

from collections.abc import Callable

from racefree.core.db import Tx

_GET = "SELECT value FROM system_settings WHERE key = :k"
_INSERT = (
    "INSERT INTO system_settings (key, value, updated_at) VALUES (:k, :v, :now)"
    " ON CONFLICT (key) DO NOTHING"
)


def get(tx: Tx, key: str) -> str | None:
    value: str | None = tx.scalar(_GET, {"k": key})
    return value


def insert_if_absent(tx: Tx, key: str, value: str, *, now: int) -> bool:
    """Store ``value`` unless the key exists; True when this call stored it (the claim CAS)."""
    return bool(tx.execute(_INSERT, {"k": key, "v": value, "now": now}))


def get_or_insert(tx: Tx, key: str, make: Callable[[], str], *, now: int) -> str:
    """The stored value, created from ``make()`` by the first writer; racers read the winner's."""
    stored = get(tx, key)
    if stored is None:
        insert_if_absent(tx, key, make(), now=now)
        stored = get(tx, key)
    assert stored is not None
    return stored


def hold_if_unchanged(tx: Tx, key: str, value: str) -> bool:
    """Lock the key's row for this transaction if it still holds ``value``; False if not.

    A writer that changes the key by CAS on its old value then waits for this
    transaction (PostgreSQL's row lock; SQLite's writers are serial anyway).
    """
    held = tx.execute(
        "UPDATE system_settings SET updated_at = updated_at WHERE key = :k AND value = :v",
        {"k": key, "v": value},
    )
    return bool(held)
