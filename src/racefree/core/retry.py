"""Retry what may succeed later: honours ``retryable`` and ``Retry-After``.

:func:`retry` calls ``fn`` until it returns, an error says a retry cannot help,
or the attempts or the overall deadline run out. Whether an error is worth
retrying, and after how long, comes from :func:`decision` -- by default the
error's own ``retryable`` and ``retry_after`` attributes, which
:class:`~racefree.core.errors.RacefreeError` and
:class:`~racefree.core.locks.LockBusy` carry -- so the server's answer, not a
guess, sets the pace. Between attempts the wait is the larger of the server's
``Retry-After`` and a jittered exponential backoff.

For HTTP clients, :func:`from_problem` turns a problem+json response (status,
headers, body) into the same decision.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to try again, and the least wait before it (seconds) if the server said."""

    retry: bool
    after_s: float | None = None


def decision(exc: BaseException) -> Decision:
    """Default: an error's ``retryable`` and ``retry_after`` attributes (anything else: no)."""
    retryable = bool(getattr(exc, "retryable", False))
    after = getattr(exc, "retry_after", None)
    return Decision(retryable, float(after) if isinstance(after, int | float) else None)


def from_problem(status: int, headers: Mapping[str, str], body: Any) -> Decision:
    """The decision for an HTTP error response (problem+json ``retryable``, ``Retry-After``)."""
    retryable = bool(body.get("retryable")) if isinstance(body, dict) else status >= 500
    after: float | None = None
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is not None and raw.strip().isdigit():
        after = float(raw.strip())
    return Decision(retryable, after)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential backoff: ``first_s * 2**n`` capped at ``cap_s``, times a jitter.

    The one backoff of the project (lock waits, executor retries, client retries).
    The jitter factor is uniform in ``[low, high)``: full jitter ``(0, 1)`` by
    default; ``(0.5, 1.5)`` spreads retries around the nominal delay.
    """

    first_s: float = 0.05
    cap_s: float = 2.0
    jitter: tuple[float, float] = (0.0, 1.0)

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        low, high = self.jitter
        return float(min(self.cap_s, self.first_s * 2**attempt) * (low + (high - low) * rng()))


def retry(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    deadline_s: float | None = None,
    backoff: Backoff = Backoff(),
    classify: Callable[[BaseException], Decision] = decision,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """``fn()``, retried while its errors are retryable; the last error is re-raised.

    A ``Retry-After`` that would end past ``deadline_s`` re-raises at once:
    waiting could not help in time.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    give_up_at = None if deadline_s is None else time.monotonic() + deadline_s
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            verdict = classify(exc)
            if not verdict.retry or attempt == attempts - 1:
                raise
            wait = max(verdict.after_s or 0.0, backoff.delay(attempt))
            if give_up_at is not None and time.monotonic() + wait > give_up_at:
                raise
            if on_retry is not None:
                on_retry(attempt + 1, exc, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
