"""One outbox poll per process, fanned out to every stream subscriber.

Subscribers (``GET /v1/events/stream`` connections) do not poll the database:
one task per process reads the outbox every ``RACEFREE_EVENTS_POLL_INTERVAL_S``
while anyone listens, and puts each event into every interested subscriber's
bounded queue. A subscriber that falls ``RACEFREE_EVENTS_SUBSCRIBER_BUFFER``
events behind is cut off (its stream ends; it resumes with ``Last-Event-ID``),
so a slow client costs a bounded amount of memory and never slows the others.
At most ``RACEFREE_EVENTS_MAX_STREAMS`` subscribe at once: one more is refused
with 429 ``RATE_LIMITED`` (checked and joined under one lock, so concurrent
subscribers can never pass the limit together).

A subscriber resuming from an older position first reads the gap ``(after,
joined]`` itself, in pages, where ``joined`` is the broadcaster's position when
it subscribed; the broadcaster delivers everything after ``joined``. Both
happen on the event loop with no await between reading ``joined`` and joining,
so nothing falls between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from racefree.core.db import Database, Tx
from racefree.core.errors import GeneralCode, RacefreeError
from racefree.events import outbox
from racefree.events.outbox import Event, Position

log = logging.getLogger("racefree.events")

PAGE = 500
#: what a refused subscriber is told to wait before it tries again
FULL_RETRY_AFTER_S = 5
T = TypeVar("T")


class Overflowed(Exception):
    """The subscriber fell too far behind and was cut off."""


@dataclass(eq=False)
class Subscription:
    after: Position
    joined: Position
    types: frozenset[str] | None
    queue: asyncio.Queue[Event | None]
    overflowed: bool = field(default=False)

    def wants(self, event: Event) -> bool:
        return self.types is None or event.type in self.types

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False when the buffer is full (the subscriber is cut off)."""
        if self.overflowed or not self.wants(event):
            return True
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():  # free the memory now; the stream ends
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False


class Broadcaster:
    """The shared poll; see the module docstring. Lives on one event loop."""

    def __init__(
        self, db: Database, *, interval_s: float, buffer: int, max_subscribers: int
    ) -> None:
        self.db = db
        self.interval_s = interval_s
        self.buffer = buffer
        self.max_subscribers = max_subscribers
        self.polls = 0
        self._subscribers: set[Subscription] = set()
        self._position: Position | None = None
        self._task: asyncio.Task[None] | None = None
        self._joining = asyncio.Lock()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def _in_thread(self, fn: Callable[[Tx], T]) -> T:
        def run() -> T:
            with self.db.read() as tx:
                return fn(tx)

        return await asyncio.to_thread(run)

    async def subscribe(
        self, after: Position | None, types: Sequence[str] | None = None
    ) -> Subscription:
        """Join the broadcast; ``after=None`` starts at the current head.

        Raises 429 ``RATE_LIMITED`` when ``max_subscribers`` are subscribed.
        """
        async with self._joining:
            if len(self._subscribers) >= self.max_subscribers:
                raise RacefreeError(
                    GeneralCode.RATE_LIMITED,
                    detail=f"this server already serves {self.max_subscribers} event streams",
                    details={"max_streams": self.max_subscribers},
                    hint="close a stream you do not need, or retry after Retry-After",
                    retry_after=FULL_RETRY_AFTER_S,
                )
            if self._position is None:
                self._position = await self._in_thread(outbox.head)
            joined = self._position
            sub = Subscription(
                after=joined if after is None else after,
                joined=joined,
                types=None if types is None else frozenset(types),
                queue=asyncio.Queue(maxsize=self.buffer),
            )
            self._subscribers.add(sub)
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run())
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    async def events(self, sub: Subscription, heartbeat_s: float) -> AsyncIterator[Event | None]:
        """The subscriber's events in outbox order; ``None`` every ``heartbeat_s`` of silence.

        Raises :class:`Overflowed` when cut off.
        """
        try:
            position = sub.after
            types = None if sub.types is None else sorted(sub.types)
            while position < sub.joined:  # the gap before joining, read by this subscriber
                batch = await self._in_thread(
                    lambda tx, p=position: outbox.read(  # type: ignore[misc]
                        tx, p, types=types, limit=PAGE, upto=sub.joined
                    )
                )
                for caught_up in batch.events:
                    yield caught_up
                position = batch.position
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
                except TimeoutError:
                    yield None
                    continue
                if event is None:
                    raise Overflowed
                if event.position > position:  # a resume point past ``joined``
                    position = event.position
                    yield event
        finally:
            self.unsubscribe(sub)

    async def _run(self) -> None:
        """Poll while anyone listens; then stop and forget the position."""
        try:
            while self._subscribers:
                full = await self._poll_once()
                if not full:
                    await asyncio.sleep(self.interval_s)
        finally:
            if not self._subscribers:
                self._position = None

    async def _poll_once(self) -> bool:
        assert self._position is not None
        after = self._position
        self.polls += 1
        try:
            batch = await self._in_thread(lambda tx: outbox.read(tx, after, limit=PAGE))
        except Exception:  # the database may be restarting; the next poll retries
            log.warning("event poll failed", exc_info=True)
            return False
        self._position = batch.position
        for event in batch.events:
            for sub in list(self._subscribers):
                if not sub.offer(event):
                    log.info("event stream subscriber fell behind; disconnected")
                    self._subscribers.discard(sub)
        return len(batch.events) == PAGE

    async def close(self) -> None:
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
