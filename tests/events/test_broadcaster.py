"""The stream's broadcaster: one database poll for every subscriber, bounded buffers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from racefree.core.db import Database, Tx
from racefree.core.errors import GeneralCode, RacefreeError
from racefree.events import outbox
from racefree.events.broadcaster import Broadcaster, Overflowed, Subscription
from racefree.events.outbox import Event
from tests.events.support import held_open, record


class CountingDatabase:
    """The real database, counting the reads made through it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reads = 0
        self.dialect = db.dialect

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        self.reads += 1
        with self.db.read() as tx:
            yield tx


def _hub(db: Any, *, buffer: int = 100, max_subscribers: int = 1000) -> Broadcaster:
    return Broadcaster(db, interval_s=0.05, buffer=buffer, max_subscribers=max_subscribers)


async def _take(hub: Broadcaster, sub: Subscription, n: int, timeout: float = 60) -> list[Event]:
    got: list[Event] = []

    async def collect() -> None:
        async for event in hub.events(sub, heartbeat_s=0.2):
            if event is not None:
                got.append(event)
                if len(got) == n:
                    return

    await asyncio.wait_for(collect(), timeout)
    return got


def test_many_subscribers_share_one_poll(db: Database) -> None:
    counting = CountingDatabase(db)

    async def main() -> None:
        hub = _hub(counting)
        subs = [await hub.subscribe(None) for _ in range(10)]
        started, reads_before, polls_before = time.monotonic(), counting.reads, hub.polls
        await asyncio.to_thread(lambda: [record(db, "SHARED") for _ in range(5)])
        results = await asyncio.gather(*(_take(hub, s, 5) for s in subs))
        elapsed = time.monotonic() - started
        polls = hub.polls - polls_before
        assert {tuple(e.id for e in r) for r in results} == {tuple(e.id for e in results[0])}
        assert [e.type for e in results[0]] == ["SHARED"] * 5
        # every read was the one shared poll: ten subscribers made no reads of their own
        assert counting.reads - reads_before == polls
        assert polls <= elapsed / hub.interval_s + 2  # one poller, not ten
        await hub.close()

    asyncio.run(main())


def test_ten_subscribing_at_once_past_a_limit_of_three_make_three_and_seven_hear_429(
    db: Database,
) -> None:
    async def main() -> None:
        hub = _hub(db, max_subscribers=3)
        joined = await asyncio.gather(
            *(hub.subscribe(None) for _ in range(10)), return_exceptions=True
        )
        subs = [j for j in joined if isinstance(j, Subscription)]
        refused = [j for j in joined if not isinstance(j, Subscription)]
        assert (len(subs), hub.subscribers) == (3, 3)
        assert len(refused) == 7
        for error in refused:
            assert isinstance(error, RacefreeError)
            assert (error.code, error.status) == (GeneralCode.RATE_LIMITED, 429)
            assert error.headers()["Retry-After"] == "5"
            assert error.details == {"max_streams": 3}
        hub.unsubscribe(subs[0])  # a stream that ends makes room for one more
        again = await hub.subscribe(None)
        with pytest.raises(RacefreeError):  # and it is full again
            await hub.subscribe(None)
        await asyncio.to_thread(record, db, "AFTER_THE_LIMIT")
        assert [e.type for e in await _take(hub, again, 1)] == ["AFTER_THE_LIMIT"]
        await hub.close()

    asyncio.run(main())


def test_a_subscriber_that_falls_behind_is_cut_off_and_others_are_not(db: Database) -> None:
    async def main() -> None:
        hub = _hub(db, buffer=3)
        slow = await hub.subscribe(None)
        fast = await hub.subscribe(None)
        fast_events = asyncio.ensure_future(_take(hub, fast, 3))
        await asyncio.to_thread(lambda: [record(db, "BURST") for _ in range(3)])
        assert len(await fast_events) == 3
        await asyncio.to_thread(lambda: [record(db, "BURST") for _ in range(3)])
        deadline = time.monotonic() + 60
        while hub.subscribers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert slow.overflowed and slow.queue.qsize() == 1  # memory freed: only the marker
        with pytest.raises(Overflowed):
            async for _ in hub.events(slow, heartbeat_s=0.2):
                pass
        await hub.close()

    asyncio.run(main())


def test_resume_reads_the_gap_then_joins_the_live_poll(db: Database) -> None:
    with db.read() as tx:
        start = outbox.head(tx)
    for _ in range(4):
        record(db, "EARLIER")

    async def main() -> None:
        hub = _hub(db)
        await hub.subscribe(None)  # the broadcaster starts at the head
        await asyncio.sleep(0.2)
        resumed = await hub.subscribe(start, ["EARLIER", "LATER"])
        later = asyncio.to_thread(lambda: [record(db, t) for t in ("LATER", "IGNORED", "LATER")])
        await later
        got = await _take(hub, resumed, 6)
        assert [e.type for e in got] == ["EARLIER"] * 4 + ["LATER"] * 2
        assert [e.id for e in got] == sorted(e.id for e in got)
        await hub.close()

    asyncio.run(main())


def test_silence_yields_heartbeats(db: Database) -> None:
    async def main() -> None:
        hub = _hub(db)
        sub = await hub.subscribe(None)
        stream = hub.events(sub, heartbeat_s=0.05)
        assert await asyncio.wait_for(stream.__anext__(), 10) is None
        await stream.aclose()
        assert hub.subscribers == 0  # leaving unsubscribes
        await hub.close()

    asyncio.run(main())


def test_the_stream_waits_for_a_lower_id_that_commits_last(engine: str, db: Database) -> None:
    if engine == "sqlite":
        pytest.skip("SQLite has one writer: B cannot take an id before A commits")

    async def main() -> None:
        hub = _hub(db)
        sub = await hub.subscribe(None, ["GAP_A", "GAP_B"])
        got: list[Event] = []

        async def collect() -> None:
            async for event in hub.events(sub, heartbeat_s=0.2):
                if event is not None:
                    got.append(event)
                    if len(got) == 2:
                        return

        collecting = asyncio.ensure_future(collect())

        def gap() -> None:
            with held_open(db, "GAP_A"):
                record(db, "GAP_B")
                polls = hub.polls
                while hub.polls < polls + 5:  # five polls with B committed and A open
                    time.sleep(0.02)
                assert got == []

        await asyncio.to_thread(gap)
        await asyncio.wait_for(collecting, 60)
        assert [e.type for e in got] == ["GAP_A", "GAP_B"]
        await hub.close()

    asyncio.run(main())
