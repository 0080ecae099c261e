"""The hop: a blocking function run in a worker thread and awaited on the event loop.

``anyio.to_thread.run_sync`` spends about 75 µs of the event loop's CPU per call on
a 2-core machine -- task lookups, an async capacity limiter, a weak-keyed registry
of idle workers, a cancel-shielded checkpoint -- about a third of the loop's work
on a PostgreSQL payment (issue 11). :func:`run_sync` is the same hand-off in about
half: threads fed by one queue, the caller's context copied into the call (the
request id travels, as with anyio), the result handed back with
``call_soon_threadsafe``.

What it keeps of anyio's defaults: at most :data:`WORKERS` calls run at once (the
rest wait in the queue), and a call is never abandoned -- a task cancelled while it
waits (a server shutting down) first waits for the thread to finish, then is
cancelled, so a write is either committed or not before the request ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: anyio's default limit of worker threads.
WORKERS = 40


class _Call:
    __slots__ = ("args", "context", "finished", "fn", "future", "loop", "over")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.context = contextvars.copy_context()
        self.fn = fn
        self.args = args
        self.over = False  # the thread is done with it
        self.finished: asyncio.Future[None] | None = None  # awaited after a cancellation


class _Pool:
    """Worker threads started as calls need them, up to :data:`WORKERS`; they live as
    long as the process (daemons, like anyio's)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, call: _Call) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread is this call's
            elif self._threads < WORKERS:
                self._threads += 1
                threading.Thread(target=self._work, name="racefree-hop", daemon=True).start()
        self._calls.put(call)

    def _work(self) -> None:
        calls = self._calls
        while True:
            call = calls.get()
            result, error = None, None
            try:
                result = call.context.run(call.fn, *call.args)
            except BaseException as exc:  # handed to the awaiting task
                error = exc
            with contextlib.suppress(RuntimeError):  # its loop closed: no one awaits it
                call.loop.call_soon_threadsafe(_deliver, call, result, error)
            del call, result, error
            with self._lock:
                self._idle += 1


def _deliver(call: _Call, result: Any, error: BaseException | None) -> None:
    """On the loop: the thread is done with ``call``."""
    call.over = True
    if call.future.cancelled():
        if call.finished is not None:
            call.finished.set_result(None)
    elif error is not None:
        call.future.set_exception(error)
    else:
        call.future.set_result(result)


_POOL = _Pool()


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread; its result, or what it raised."""
    call = _Call(asyncio.get_running_loop(), fn, args)
    _POOL.submit(call)
    try:
        result: T = await call.future
    except asyncio.CancelledError:
        if not call.over:  # the thread goes on: wait it out, then be cancelled
            call.finished = call.loop.create_future()
            await _uncancellable(call.finished)
        raise
    return result


async def _uncancellable(finished: asyncio.Future[None]) -> None:
    while not finished.done():
        try:
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            continue
