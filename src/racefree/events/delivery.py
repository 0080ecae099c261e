"""The webhook deliverer: at-least-once, in outbox order, one process per webhook.

For each ACTIVE webhook whose next attempt is due, a process takes the lease
``webhook:<id>`` (:class:`~racefree.core.locks.LeaseLocks`; busy -> another
process is delivering it, skip). Holding it, it reads the events after the
webhook's cursor (:func:`racefree.events.outbox.read`: gap-free), and for each:

1. makes sure the lease outlives the request (renewing it when less than the
   request timeout, at most half the TTL, plus a second is left): no other
   process can start on this webhook while a request is in flight;
2. POSTs the payload, signed per Standard Webhooks (:mod:`.signing`);
3. after 2xx answers, records the attempts and moves the cursor past them --
   one transaction per run of up to ``FLUSH_EVERY`` successes (and at the end
   of a page or at a failure), a CAS on the cursor it read, fenced by the lease
   (:func:`racefree.core.locks.fence`): a holder whose lease was taken over
   writes nothing.

A failure (non-2xx, timeout, refused host) counts one attempt and schedules the
next with exponential backoff and jitter, never sooner than the receiver's
``Retry-After``; the attempt that reaches ``RACEFREE_WEBHOOK_MAX_ATTEMPTS``
disables the webhook (``WEBHOOK_DISABLED``, same transaction). The event stays
at the cursor, so later events wait behind it: order is kept.

The cursor is in the database and moves only after a 2xx, so a process killed
anywhere -- after the commit, during the request, before recording it --
leaves the event to be delivered again by the next holder (at-least-once;
receivers dedupe on ``webhook-id``, the event id).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from racefree import __version__
from racefree.core.clock import Clock
from racefree.core.condition import Condition
from racefree.core.db import Database, Tx
from racefree.core.errors import RacefreeError
from racefree.core.ids import new_id
from racefree.core.locks import Lease, LeaseLocks, LockBusy, fence
from racefree.core.retry import Backoff
from racefree.events import outbox, secrets, signing, targets, webhooks
from racefree.events.outbox import Event, Position
from racefree.events.secrets import SecretBox, SecretKeyError
from racefree.events.settings import EventSettings
from racefree.events.webhooks import Delivery, Webhook

log = logging.getLogger("racefree.events.webhooks")

PAGE = 100
#: successes recorded (and the cursor moved) in one transaction at most this many at a time
FLUSH_EVERY = 50
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
MAX_ERROR_CHARS = 500


def lease_key(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST got."""

    status_code: int | None
    error: str | None
    retry_after_s: float | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, float(when.timestamp()) - now)


def backoff_s(failures: int, settings: EventSettings, retry_after_s: float | None) -> float:
    """Exponential (base * 2^(failures-1)) with equal jitter, capped; at least Retry-After."""
    ceiling = settings.webhook_backoff_max_s
    delay = min(ceiling, settings.webhook_backoff_base_s * 2.0 ** max(0, failures - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, ceiling))
    return delay


@dataclass
class _Run:
    """One pass over a page of a webhook's events: what was sent since the last commit."""

    hook: Webhook
    cursor: Position = field(init=False)
    succeeded: list[tuple[Position, Delivery]] = field(default_factory=list)
    failed: tuple[Delivery, Attempt] | None = None
    delivered: int = 0  # successes in this run, committed or not

    def __post_init__(self) -> None:
        self.cursor = self.hook.cursor

    def flushed(self) -> bool:
        self.succeeded.clear()
        return True


class Deliverer:
    """Delivers due webhooks; :meth:`deliver` handles one webhook under its lease."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: EventSettings,
        *,
        holder: str,
        http: httpx.Client | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.holder = holder
        self.locks = LeaseLocks(db, clock)
        self.allowed = targets.allowed_hosts(settings.webhook_allowed_hosts)
        self.timeout_s = min(settings.webhook_timeout_s, settings.webhook_lease_ttl_s / 2)
        # no keep-alive: each request's own connection is what _Deadline can end
        self.http = http or httpx.Client(
            follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self.stopping = stopping or threading.Event()
        self._box: SecretBox | None = None

    def close(self) -> None:
        self.http.close()

    # -- which webhooks ---------------------------------------------------------------

    def due(self) -> list[str]:
        with self.db.read() as tx:
            return webhooks.due(tx, self.clock.now_ms())

    def run_once(self) -> int:
        """Deliver every due webhook in turn (the tests' and the CLI's entry point)."""
        return sum(self.deliver(webhook_id) for webhook_id in self.due())

    # -- one webhook ------------------------------------------------------------------

    def deliver(self, webhook_id: str) -> int:
        """Deliver ``webhook_id``'s pending events while holding its lease; how many succeeded."""
        try:
            lease = self.locks.acquire(
                lease_key(webhook_id), holder=self.holder, ttl_s=self.settings.webhook_lease_ttl_s
            )
        except LockBusy:
            return 0  # another process is on it
        try:
            return self._deliver_held(webhook_id, lease)
        finally:
            try:
                self.locks.release(lease)
            except Exception:  # it expires by itself
                log.warning("could not release the lease of webhook %s", webhook_id)

    def _deliver_held(self, webhook_id: str, lease: Lease) -> int:
        delivered = 0
        while not self.stopping.is_set():
            with self.db.read() as tx:
                try:
                    hook = webhooks.get(tx, webhook_id)
                except RacefreeError:
                    return delivered  # deleted
                if hook.status != webhooks.ACTIVE or hook.next_attempt_at_ms > self.clock.now_ms():
                    return delivered
                batch = outbox.read(tx, hook.cursor, types=hook.types_filter, limit=PAGE)
            run = _Run(hook)
            whole = True  # every event of the page was sent
            for event in batch.events:
                held = self._keep(lease)
                if held is None:
                    return delivered
                lease = held
                if not self._unchanged(hook):  # disabled, deleted or edited meanwhile
                    whole = False
                    break
                if not self._attempt(run, event, lease):
                    whole = False
                    break
            # events of other types after the last delivered one are passed in the same move
            ok = self._commit(run, lease, past=batch.position if whole else None)
            delivered += run.delivered if ok else 0
            if not ok or run.failed or not batch.events:
                return delivered
        return delivered

    def _unchanged(self, hook: Webhook) -> bool:
        """``hook`` is still ACTIVE and unedited: an operator's PATCH (disable, a new url or
        types) or DELETE stops the sending at once, not at the end of the page."""
        with self.db.read() as tx:
            return webhooks.unchanged(tx, hook.id, hook.version)

    def _keep(self, lease: Lease) -> Lease | None:
        """The lease, renewed when less than a request's timeout (plus margin) is left.

        So a request never starts unless the lease outlives it: no other process
        can start on this webhook while it is in flight. None when it was lost.
        """
        margin_ms = 1000 * (self.timeout_s + 1)
        if lease.expires_at_ms - self.clock.now_ms() > margin_ms:
            return lease
        try:
            return self.locks.renew(lease)
        except RacefreeError:
            log.warning("lost the lease of %s; stopping", lease.key)
            return None

    def _attempt(self, run: _Run, event: Event, lease: Lease) -> bool:
        """POST one event; successes are committed in batches (:meth:`_commit`)."""
        started_ms = self.clock.now_ms()
        attempt = self._post(run.hook, event)
        delivery = Delivery(
            id=new_id(),
            webhook_id=run.hook.id,
            event_id=event.id,
            event_type=event.type,
            # the first event of a run may be a retry; after a success the count restarts
            attempt=run.hook.failures + 1 if not run.delivered else 1,
            outcome=SUCCEEDED if attempt.ok else FAILED,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
            holder=self.holder,
            started_at_ms=started_ms,
        )
        if not attempt.ok:
            run.failed = (delivery, attempt)
            return False
        run.succeeded.append((event.position, delivery))
        run.delivered += 1
        if len(run.succeeded) >= FLUSH_EVERY:
            return self._commit(run, lease) and run.flushed()
        return True

    def _commit(self, run: _Run, lease: Lease, past: Position | None = None) -> bool:
        """Record the batch: move the cursor past the successes (and ``past``), count a failure.

        One transaction, a CAS on the cursor this run started from, fenced by the
        lease. If the process dies before it, the batch is sent again (at-least-once).
        """
        to = run.succeeded[-1][0] if run.succeeded else run.cursor
        if past is not None and past > to:
            to = past
        if to == run.cursor and run.failed is None:
            return True
        failure: webhooks.Failure | None = None
        with self.db.write() as tx:
            guard = fence(lease, self.clock.now_ms(), self.db.dialect)
            if to != run.cursor and not webhooks.advance(tx, run.hook.id, run.cursor, to, guard):
                return False
            for _, delivery in run.succeeded:
                webhooks.record_delivery(tx, delivery)
            if run.failed is not None:
                failure = self._fail(tx, run, to, guard)
                if failure is None:
                    return False
        run.cursor = to
        if failure is not None and run.failed is not None:
            delivery, attempt = run.failed
            log.warning(
                "webhook %s: event %d attempt %d failed (%s)%s",
                run.hook.id,
                delivery.event_id,
                delivery.attempt,
                attempt.error or f"HTTP {attempt.status_code}",
                "; webhook disabled" if failure.disabled else "",
            )
        return True

    def _fail(
        self, tx: Tx, run: _Run, cursor: Position, guard: Condition
    ) -> webhooks.Failure | None:
        assert run.failed is not None
        delivery, attempt = run.failed
        failures = 0 if run.delivered else run.hook.failures  # a success reset the count
        delivery = replace(delivery, attempt=failures + 1)
        run.failed = (delivery, attempt)
        delay = backoff_s(failures + 1, self.settings, attempt.retry_after_s)
        failure = webhooks.fail(
            tx,
            run.hook.id,
            cursor,
            guard,
            next_attempt_at_ms=self.clock.now_ms() + round(1000 * delay),
            max_attempts=self.settings.webhook_max_attempts,
            reason=f"{self.settings.webhook_max_attempts} failed attempts; last: "
            + (attempt.error or f"HTTP {attempt.status_code}"),
            now=self.clock.now(),
        )
        if failure is not None:
            webhooks.record_delivery(tx, delivery)
        return failure

    def _secret(self, hook: Webhook) -> str:
        if self._box is None:
            with self.db.write() as tx:
                self._box = secrets.box(tx, self.settings, now=self.clock.now())
        return self._box.open(hook.sealed_secret, hook.id)

    def _post(self, hook: Webhook, event: Event) -> Attempt:
        started = time.perf_counter()

        def failed(error: str, code: int | None = None, retry: float | None = None) -> Attempt:
            ms = round((time.perf_counter() - started) * 1000)
            return Attempt(code, error[:MAX_ERROR_CHARS], retry, ms)

        refused = targets.refusal(hook.url, self.allowed)
        if refused is not None:
            return failed(f"not sent: {refused}")
        try:
            secret = self._secret(hook)
        except SecretKeyError as exc:
            return failed(f"not sent: {exc}")
        body = json.dumps(event.payload(), separators=(",", ":")).encode()
        headers = {
            **signing.headers(secret, str(event.id), self.clock.now(), body),
            "content-type": "application/json",
            "user-agent": f"racefree/{__version__} (webhooks)",
        }
        deadline = _Deadline(self.timeout_s)
        try:
            # streamed, and the body never read: only the status and Retry-After matter, and
            # a receiver's huge or endless body must not fill memory or hold the deliverer
            with (
                deadline,
                self.http.stream(
                    "POST",
                    hook.url,
                    content=body,
                    headers=headers,
                    timeout=self.timeout_s,
                    extensions={"trace": deadline.trace},
                ) as response,
            ):
                status = response.status_code
                retry_header = response.headers.get("retry-after")
        except Exception as exc:  # any failure to send is a failed attempt, never a crash
            if deadline.expired:
                return failed(f"timed out after {self.timeout_s:g}s")
            return failed(f"{type(exc).__name__}: {exc}")
        ms = round((time.perf_counter() - started) * 1000)
        if 200 <= status < 300:
            return Attempt(status, None, None, ms)
        retry = retry_after_seconds(retry_header, time.time())
        return Attempt(status, f"HTTP {status}", retry, ms)


class _Deadline:
    """Ends a request that runs past ``seconds`` in all.

    httpx's timeouts bound each connect, read and write, not the request: a receiver
    answering a byte at a time would hold the deliverer (and outlive its lease, letting a
    second process start on the webhook). When the deadline passes, the request's socket
    (learnt from httpcore's ``trace`` extension) is shut down, which ends any blocked read.
    """

    _OPENED = ("connection.connect_tcp.complete", "connection.start_tls.complete")

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        stream = info.get("return_value") if name in self._OPENED else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            opened = list(self._sockets)
        for sock in opened:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class DeliveryLoop(threading.Thread):
    """The background worker of ``racefree serve``: every interval, deliver the due webhooks.

    Not paused by the kill switch: an activation is exactly what receivers must hear.
    The interval is jittered (0.5x-1.5x): processes started together would otherwise
    poll in lockstep, and the one a few milliseconds ahead would take every lease.
    """

    def __init__(
        self, deliverer: Deliverer, *, interval_s: float, threads: int, stopping: threading.Event
    ) -> None:
        super().__init__(name="racefree-webhooks", daemon=True)
        self.deliverer = deliverer
        self._poll = Backoff(interval_s, interval_s, jitter=(0.5, 1.5))
        self.stopping = stopping
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="racefree-webhook")
        self._inflight: set[str] = set()
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._dispatch()
                except Exception:  # the database may be restarting; the next pass retries
                    log.exception("webhook dispatch failed")
                self.stopping.wait(self._poll.delay(0))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.deliverer.close()

    def _dispatch(self) -> None:
        for webhook_id in self.deliverer.due():
            with self._lock:
                if webhook_id in self._inflight:
                    continue
                self._inflight.add(webhook_id)
            future = self._pool.submit(self.deliverer.deliver, webhook_id)
            future.add_done_callback(self._done(webhook_id))

    def _done(self, webhook_id: str) -> Callable[[Future[int]], None]:
        def done(future: Future[int]) -> None:
            with self._lock:
                self._inflight.discard(webhook_id)
            if future.exception() is not None and not future.cancelled():
                log.error("delivering webhook %s failed", webhook_id, exc_info=future.exception())

        return done
