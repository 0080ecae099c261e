"""What a session client knows about its token: the part both session clients share.

Pure state, no I/O and no locking: :class:`~racefree.client.session.SessionClient`
(threads) and :class:`~racefree.client.session.AsyncSessionClient` (tasks) hold
one :class:`Lease` each and change it only while their single-flight guard is
theirs.
"""

from __future__ import annotations

import inspect
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from racefree.client import errors, models
from racefree.client.exceptions import ApiError, RacefreeClientError, SessionLostError

#: ``on_rotate``: gets each new token before it is used (a coroutine function is awaited
#: by the asynchronous client)
RotateHook = Callable[[str], object | Awaitable[object]]
#: The fraction of ``expires_in`` after which a session client renews (the server's default).
DEFAULT_RENEW_AT = 0.5
#: A renewal refused for good: keep the token until it expires, never ask again.
FINAL_REFUSALS = (errors.RenewalLimitReachedError, errors.SessionAbsoluteLifetimeExceededError)
#: Renewal refusals that leave the current token usable.
ADJUSTABLE = (errors.RenewalTooEarlyError, *FINAL_REFUSALS)
#: Seconds before trying again after a renewal that failed without an answer.
RETRY_RENEWAL_AFTER_S = 1.0


def epoch(iso: str | None) -> float | None:
    """Epoch seconds of the server's ISO-8601 UTC time (``...Z``)."""
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def lost_error(conflict: ApiError, session_id: str | None) -> ApiError:
    """The ``RENEWAL_CONFLICT`` a session client raises from then on, saying what happened."""
    conflict.detail = (
        f"session {session_id} was renewed by another holder of its token, so this client "
        "no longer has a valid token; it will not send the old one again (a rotated-out "
        "token presented later revokes the session)"
    )
    conflict.hint = "open a new session, and give each token to one SessionClient only"
    return conflict


@dataclass
class Lease:
    """The current token, when it may be renewed, and what became of earlier ones."""

    token: str = field(repr=False)
    renew_at: float
    session_id: str | None = None
    renewable_at: float | None = None
    expires_at: float | None = None
    #: renewals refused for good (limit, absolute lifetime): use the token until it expires
    exhausted: bool = False
    #: the RENEWAL_CONFLICT that took this client's token away
    lost: RacefreeClientError | None = None
    retired: deque[str] = field(default_factory=lambda: deque(maxlen=8), repr=False)
    #: how many renewals this client made
    rotations: int = 0

    def due(self, now: float | None = None) -> bool:
        """Must the next caller refresh (describe the session, or renew it) first?"""
        if self.lost is not None or self.exhausted:
            return False
        if self.session_id is None or self.renewable_at is None:
            return True
        return (time.time() if now is None else now) >= self.renewable_at

    def described(self, session: models.Session) -> None:
        """Adopt the server's view of the session (times, limits)."""
        self.session_id = session.session_id
        self.expires_at = float(session.expires_at_epoch)
        since = epoch(session.last_renewed_at) or epoch(session.created_at) or time.time()
        # the server's rule: the smallest whole number of seconds >= renew_at * expires_in
        self.renewable_at = since + math.ceil(session.expires_in * self.renew_at)
        if session.renewal_count >= session.max_renewals:
            self.exhausted = True

    def rotated(self, renewed: models.SessionWithToken) -> None:
        self.retired.append(self.token)
        self.token = renewed.token
        self.rotations += 1
        self.described(renewed)

    def refused(self, error: ApiError) -> None:
        """A renewal answered with ``error``: adjust, or remember the loss."""
        if isinstance(error, errors.RenewalConflictError):
            self.lost = lost_error(error, self.session_id)
        elif isinstance(error, FINAL_REFUSALS):
            self.exhausted = True
        elif isinstance(error, errors.RenewalTooEarlyError):
            # the server renews later than this client guessed: wait as long as it says.
            # Relative (Retry-After), not its absolute renewable_at: clocks may disagree.
            self.renewable_at = time.time() + (error.retry_after or RETRY_RENEWAL_AFTER_S)

    def lost_in_flight(self) -> SessionLostError:
        """A renewal's answer was lost and the token it presented is no longer valid."""
        self.lost = SessionLostError(
            f"session {self.session_id}: a renewal rotated the token but its answer was lost "
            "in transit, so this client has no valid token; open a new session"
        )
        return self.lost

    def postpone(self) -> None:
        self.renewable_at = time.time() + RETRY_RENEWAL_AFTER_S

    def superseded(self, used: str | None) -> bool:
        return used is not None and used != self.token and used in self.retired


def call_hook(hook: RotateHook, token: str) -> None:
    """Run ``on_rotate`` (synchronous client: a coroutine function is refused)."""
    if inspect.isawaitable(hook(token)):
        raise TypeError("SessionClient's on_rotate must be a plain function")


async def call_hook_async(hook: RotateHook, token: str) -> None:
    """Run ``on_rotate``, awaiting it if it is a coroutine function."""
    result = hook(token)
    if inspect.isawaitable(result):
        await result
