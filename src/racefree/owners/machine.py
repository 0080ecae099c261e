"""The owner lifecycle's transition table (docs/state-machines.md).

An owner's state is derived from two agent columns: ``owner_public_key`` NULL
-> ``NONE``; ``owner_verified`` 0 -> ``GRACE``; 1 -> ``LOCKED``. The moves are
the CASes in :mod:`racefree.owners` (``WHERE owner_verified = 0`` for the
operator's unsigned changes, ``WHERE owner_verified = 0 AND owner_public_key =
<signer>`` for the lock-in); a refused move's code comes from this table.
"""

from __future__ import annotations

from enum import StrEnum

from racefree.core.machine import TransitionTable, move
from racefree.owners.errors import OwnerCode

NONE = "NONE"
GRACE = "GRACE"
LOCKED = "LOCKED"


class Move(StrEnum):
    SET_KEY = "set_key"
    CHANGE_KEY = "change_key"
    REMOVE_KEY = "remove_key"
    LOCK_IN = "lock_in"
    SIGNED_CHANGE = "signed_change"


OWNERS = TransitionTable(
    "owner",
    table="agents",
    state_column="owner_public_key, owner_verified",
    states=(NONE, GRACE, LOCKED),
    initial=NONE,
    transitions=(
        # unsigned operator changes match only an unlocked owner
        move(Move.SET_KEY, NONE, GRACE, conflict=OwnerCode.OWNER_AUTH_REQUIRED),
        move(Move.CHANGE_KEY, GRACE, GRACE, conflict=OwnerCode.OWNER_AUTH_REQUIRED),
        # LOCKED -> NONE is refused: a locked-in owner is never removed
        move(Move.REMOVE_KEY, GRACE, NONE, conflict=OwnerCode.OWNER_LOCKED),
        # the first valid signature; idempotent for the same key, never an error for it
        move(Move.LOCK_IN, GRACE, LOCKED, conflict=OwnerCode.OWNER_MISMATCH),
        move(Move.SIGNED_CHANGE, LOCKED, LOCKED, conflict=OwnerCode.OWNER_MISMATCH),
    ),
)
