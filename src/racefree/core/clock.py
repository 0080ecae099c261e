"""Injectable time: epoch seconds (UTC) everywhere, so tests can move time."""

from __future__ import annotations

import functools
import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Current time, whole epoch seconds (UTC)."""
        ...

    def now_ms(self) -> int:
        """Current time, epoch milliseconds (UTC)."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to; thread-safe."""

    def __init__(self, start: int = 1_800_000_000) -> None:
        self._ms = start * 1000
        self._lock = threading.Lock()

    def now(self) -> int:
        return self._ms // 1000

    def now_ms(self) -> int:
        return self._ms

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._ms += round(seconds * 1000)

    def set(self, epoch_seconds: int) -> None:
        with self._lock:
            self._ms = epoch_seconds * 1000


def isoformat(epoch_seconds: int | None) -> str | None:
    """RFC 3339 UTC with milliseconds for API responses (``2026-01-01T00:00:00.000Z``).

    One format everywhere; fields holding epoch numbers end in ``_epoch``.
    """
    if epoch_seconds is None:
        return None
    return _isoformat(epoch_seconds)


@functools.lru_cache(maxsize=256)
def _isoformat(epoch_seconds: int) -> str:  # one object shows the same second several times
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
