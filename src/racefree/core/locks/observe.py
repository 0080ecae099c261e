"""Lock observability: one structured log line per acquisition, Prometheus metrics.

Log line (logger ``racefree.locks``, logfmt so it greps and parses)::

    lock key=plan-group:0190... backend=lease outcome=acquired wait_ms=12 holder=... token=7

The same fields are attached to the record as ``extra`` (``lock_key``, ``lock_backend``,
``lock_outcome``, ``lock_wait_ms``) for structured handlers. Metrics carry the
backend and the key's *scope* (the part before the first ``:``), never the key
itself, so their cardinality stays bounded.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("racefree.locks")


class Backend(StrEnum):
    LEASE = "lease"
    ADVISORY = "advisory"
    ADVISORY_SESSION = "advisory_session"


class Outcome(StrEnum):
    ACQUIRED = "acquired"
    BUSY = "busy"
    TIMEOUT = "timeout"


_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LABELS = ("backend", "scope")

WAIT = Histogram(
    "racefree_lock_wait_seconds",
    "Time from asking for a lock to getting it or giving up, by backend and key scope.",
    [*_LABELS, "outcome"],
    buckets=_BUCKETS,
)
HOLD = Histogram(
    "racefree_lock_hold_seconds",
    "Time a lock was held, observed at release, by backend and key scope.",
    _LABELS,
    buckets=_BUCKETS,
)
ACQUIRED = Counter("racefree_lock_acquired_total", "Locks acquired.", _LABELS)
BUSY = Counter("racefree_lock_busy_total", "Acquisitions refused: held, no wait.", _LABELS)
TIMEOUT = Counter("racefree_lock_timeout_total", "Waits that ran out (LOCK_TIMEOUT).", _LABELS)
WAITERS = Gauge(
    "racefree_lock_waiters",
    "Acquisitions waiting now: they found the lock held and retry until it is free.",
    _LABELS,
)
LOST = Counter("racefree_lock_lost_total", "Leases found taken over (LOCK_LOST).", _LABELS)

_COUNTERS = {Outcome.ACQUIRED: ACQUIRED, Outcome.BUSY: BUSY, Outcome.TIMEOUT: TIMEOUT}


def scope_of(key: str) -> str:
    return key.split(":", 1)[0] if ":" in key else "-"


def acquisition(
    key: str,
    backend: Backend,
    outcome: Outcome,
    wait_ms: float,
    *,
    holder: str | None = None,
    token: int | None = None,
    quiet: bool = False,
) -> None:
    """Record one acquisition attempt (after any wait): log line, counter, wait histogram.

    ``quiet``: a busy refusal is routine polling, logged at DEBUG.
    """
    scope = scope_of(key)
    _COUNTERS[outcome].labels(backend.value, scope).inc()
    WAIT.labels(backend.value, scope, outcome.value).observe(wait_ms / 1000)
    level = logging.WARNING if outcome is Outcome.TIMEOUT else logging.INFO
    if quiet and outcome is Outcome.BUSY:
        level = logging.DEBUG
    if not log.isEnabledFor(level):
        return
    fields = f"key={key} backend={backend} outcome={outcome} wait_ms={wait_ms:.1f}"
    if holder is not None:
        fields += f" holder={holder}"
    if token is not None:
        fields += f" token={token}"
    log.log(
        level,
        "lock %s",
        fields,
        extra={
            "lock_key": key,
            "lock_backend": backend.value,
            "lock_outcome": outcome.value,
            "lock_wait_ms": round(wait_ms, 1),
        },
    )


def waiting(key: str, backend: Backend, delta: int) -> None:
    """An acquisition starts (``+1``) or stops (``-1``) waiting for a held lock."""
    WAITERS.labels(backend.value, scope_of(key)).inc(delta)


def released(key: str, backend: Backend, held_s: float) -> None:
    HOLD.labels(backend.value, scope_of(key)).observe(max(0.0, held_s))


def lost(key: str, backend: Backend = Backend.LEASE) -> None:
    LOST.labels(backend.value, scope_of(key)).inc()
    log.warning("lock key=%s backend=%s outcome=lost", key, backend)
