"""Every exception racefree raises, in one place.

Each one is a :class:`RacefreeError` and carries a catalog code
(:mod:`racefree.core.errors`), so the library, the HTTP API and the CLI tell
the same story about it; ``except RacefreeError`` catches them all. The
hierarchy::

    RacefreeError(code, detail, details, hint, retry_after)   the catalog's error
    |   raised with a domain's code by core and every domain: AGENT_SUSPENDED,
    |   RENEWAL_CONFLICT, KILL_SWITCH_ALREADY_ACTIVE, LOCK_LOST, ...
    |
    +-- LockBusy                  LOCK_TIMEOUT (409, retryable): the lock is held
    |                             and the caller asked not to wait; holder, lease
    |                             times and Retry-After from the lease
    +-- DatabaseError             INTERNAL_ERROR: the database is misconfigured or
    |   |                         unusable (also a RuntimeError); its message is
    |   |                         for the operator's log, never for an HTTP client
    |   +-- DatabaseInUse         another process already serves this SQLite file
    |   +-- AdvisoryUnavailable   advisory locks asked of a database without them
    +-- DatabaseUnavailable       DATABASE_UNAVAILABLE (503, retryable): the connection
    |                             was lost (terminated backend, restart) or the database
    |                             stayed busy; the request may be retried
    +-- MachineDefinitionError    INTERNAL_ERROR: an inconsistent transition table
                                  (also a ValueError), raised when it is defined

One exception is not an error and never leaves racefree: ``WriterBusy``, raised by
a SQLite write that was asked not to wait (``Database.without_waiting``) and found the
writer taken, or by work that may wait announced there (``Database.waits_ahead``); the
HTTP pipeline then serves the request again in a worker thread.

Executors report failures with ``racefree.transactions.executors.ExecutorError``
(a category, not an answer: the execution loop turns it into the transaction's
outcome); the CLI's usage errors are the CLI's own.
"""

from __future__ import annotations

import math

from racefree.core.errors import GeneralCode, LockCode, RacefreeError

__all__ = [
    "AdvisoryUnavailable",
    "DatabaseError",
    "DatabaseInUse",
    "DatabaseUnavailable",
    "LockBusy",
    "MachineDefinitionError",
    "RacefreeError",
    "WriterBusy",
]


class LockBusy(RacefreeError):
    """The lock is held by someone else and the caller asked not to wait.

    ``acquired_at_ms``/``expires_at_ms`` are ``None`` for advisory locks (they have no lease).
    """

    def __init__(
        self,
        key: str,
        holder: str | None,
        acquired_at_ms: int | None,
        expires_at_ms: int | None,
        *,
        now_ms: int | None = None,
    ) -> None:
        self.key = key
        self.holder = holder
        self.acquired_at_ms = acquired_at_ms
        self.expires_at_ms = expires_at_ms
        retry_after = None
        if expires_at_ms is not None and now_ms is not None:
            # whole seconds until the lease runs out at the latest
            retry_after = max(1, math.ceil((expires_at_ms - now_ms) / 1000))
        super().__init__(
            LockCode.LOCK_TIMEOUT,
            detail=f"lock {key!r} is held by {holder or 'another session'}",
            details={
                "key": key,
                "holder": holder,
                "acquired_at_ms": acquired_at_ms,
                "expires_at_ms": expires_at_ms,
            },
            retry_after=retry_after,
        )

    def __str__(self) -> str:
        return self.message


class _InternalError(RacefreeError):
    """A message for the operator; over HTTP only the catalog's generic INTERNAL_ERROR."""

    def __init__(self, message: str) -> None:
        self.reason = message
        super().__init__(GeneralCode.INTERNAL_ERROR)

    def __str__(self) -> str:
        return self.reason


class DatabaseError(_InternalError, RuntimeError):
    """A configuration or environment problem with the database."""


class DatabaseInUse(DatabaseError):
    """Another process already serves this SQLite file."""


class AdvisoryUnavailable(DatabaseError):
    """Advisory locks were asked for on a database that has none (SQLite)."""


class DatabaseUnavailable(RacefreeError):
    """The database connection was lost or none could be had (503, retryable).

    Raised instead of the driver's error, so a lost connection answers 503
    ``DATABASE_UNAVAILABLE`` with ``Retry-After``, never 500.
    """

    def __init__(self, cause: str) -> None:
        self.cause = cause
        super().__init__(GeneralCode.DATABASE_UNAVAILABLE, retry_after=1)

    def __str__(self) -> str:
        return f"database unavailable: {self.cause}"


class MachineDefinitionError(_InternalError, ValueError):
    """The transition table is inconsistent; raised when the machine is defined."""


class WriterBusy(Exception):
    """The writer was taken and the write was asked not to wait, or work that may wait
    was announced (``Database.waits_ahead``) where nothing may; nothing was committed.

    Deliberately not a :class:`RacefreeError`: no handler may turn it into an answer.
    """
