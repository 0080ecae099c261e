"""What every lock backend shares: the lease value, the busy exception, the wait loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from racefree.core.errors import LockCode, RacefreeError
from racefree.core.exceptions import LockBusy as LockBusy  # noqa: PLC0414 (re-export)
from racefree.core.locks import observe
from racefree.core.retry import Backoff

T = TypeVar("T")

#: Backoff between attempts of a client-side wait (seconds): doubles, capped, full jitter.
BACKOFF_FIRST_S = 0.005
BACKOFF_CAP_S = 0.1
_BACKOFF = Backoff(BACKOFF_FIRST_S, BACKOFF_CAP_S)


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lock. ``token`` is the fencing token: greater than any earlier one for ``key``."""

    key: str
    holder: str
    token: int
    acquired_at_ms: int
    expires_at_ms: int
    #: the lease's time-to-live, kept by renewals (default: ``expires_at_ms - acquired_at_ms``)
    ttl_ms: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.ttl_ms <= 0:
            object.__setattr__(self, "ttl_ms", max(1, self.expires_at_ms - self.acquired_at_ms))


def lock_timeout(key: str, wait_s: float, busy: LockBusy | None) -> RacefreeError:
    details: dict[str, object] = {"key": key, "wait_s": wait_s}
    if busy is not None:
        details.update(
            holder=busy.holder, acquired_at_ms=busy.acquired_at_ms, expires_at_ms=busy.expires_at_ms
        )
    return RacefreeError(
        LockCode.LOCK_TIMEOUT,
        detail=f"lock {key!r} was not free within {wait_s:g}s",
        details=details,
        retry_after=busy.retry_after if busy is not None else 1,
    )


class Waiter:
    """Retries a try-acquire with jittered exponential backoff until a deadline.

    ``wake`` lets an in-process release cut the sleep short; other processes'
    releases are seen at the next attempt. While it waits, the acquisition
    counts in the ``racefree_lock_waiters`` gauge.
    """

    def __init__(
        self, wake: threading.Condition | None = None, backend: observe.Backend | None = None
    ) -> None:
        self._wake = wake
        self._backend = backend or observe.Backend.LEASE

    def until(self, key: str, wait_s: float, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + wait_s
        tries = 0
        try:
            while True:
                try:
                    return attempt()
                except LockBusy as busy:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise lock_timeout(key, wait_s, busy) from None
                    if tries == 0:
                        observe.waiting(key, self._backend, +1)
                    self._sleep(min(remaining, _BACKOFF.delay(tries) + 0.001))
                    tries += 1
        finally:
            if tries:
                observe.waiting(key, self._backend, -1)

    def _sleep(self, seconds: float) -> None:
        if self._wake is None:
            time.sleep(seconds)
            return
        with self._wake:
            self._wake.wait(seconds)
