"""http.hop: a blocking call in a worker thread, awaited on the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from racefree.http import hop

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_the_call_runs_in_another_thread_with_the_callers_context() -> None:
    async def main() -> tuple[str, int]:
        request_id.set("req-1")
        return await hop.run_sync(lambda n: (request_id.get(), threading.get_ident() + n), 0)

    seen, thread = asyncio.run(main())
    assert seen == "req-1"
    assert thread != threading.get_ident()


def test_what_the_call_raises_is_raised_to_the_caller() -> None:
    def fails() -> None:
        raise LookupError("no such row")

    with pytest.raises(LookupError, match="no such row"):
        asyncio.run(hop.run_sync(fails))


def test_a_cancelled_caller_waits_for_the_thread_before_it_is_cancelled() -> None:
    """A server shutting down cancels its requests: a write in flight is finished (or
    not) before the request ends, never abandoned halfway."""
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def write() -> None:
        started.set()
        release.wait(5)
        finished.append("committed")

    async def main() -> None:
        task = asyncio.ensure_future(hop.run_sync(write))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the thread
        threading.Timer(0.05, release.set).start()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == ["committed"]

    asyncio.run(main())


def test_at_most_the_worker_limit_runs_at_once_and_the_rest_wait_their_turn() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(hop.run_sync(work) for _ in range(hop.WORKERS + 10)))

    asyncio.run(main())
    assert most == hop.WORKERS
    assert running == 0
