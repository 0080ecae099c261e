"""The session lifecycle's transition table (docs/state-machines.md).

A session's state is derived: ``REVOKED`` when ``revoked_at`` is set, else
``EXPIRED`` when ``expires_at <= now``, else ``ACTIVE``. The moves are CASes
in this package: renewal (``WHERE token_hash = :current AND revoked_at IS
NULL AND expires_at > :now ...``, :mod:`.renewal`) and revocation
(``WHERE revoked_at IS NULL``, :mod:`.revocation`); expiry is the clock
passing ``expires_at``. A refused move's code comes from this table.
"""

from __future__ import annotations

from enum import StrEnum

from racefree.core.machine import TransitionTable, move
from racefree.sessions.errors import SessionCode

ACTIVE = "ACTIVE"
EXPIRED = "EXPIRED"
REVOKED = "REVOKED"


class Move(StrEnum):
    RENEW = "renew"
    EXPIRE = "expire"
    REVOKE = "revoke"


SESSIONS = TransitionTable(
    "session",
    table="sessions",
    state_column="revoked_at, expires_at",
    states=(ACTIVE, EXPIRED, REVOKED),
    initial=ACTIVE,
    transitions=(
        move(
            Move.RENEW,
            ACTIVE,
            ACTIVE,
            conflict=SessionCode.RENEWAL_CONFLICT,
            conflict_by_state={
                REVOKED: SessionCode.SESSION_REVOKED,
                EXPIRED: SessionCode.TOKEN_EXPIRED,
            },
        ),
        move(Move.EXPIRE, ACTIVE, EXPIRED, conflict=SessionCode.TOKEN_EXPIRED),
        # every revocation: operator, token reuse, agent termination, the kill switch
        move(Move.REVOKE, (ACTIVE, EXPIRED), REVOKED, conflict=SessionCode.SESSION_ALREADY_REVOKED),
    ),
)
