"""``client.events.stream()`` against a real server: typed events in outbox order, resumable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from racefree.client import AsyncClient, Client, errors, models
from racefree.testing import Server

pytestmark = pytest.mark.server

FAST = {"RACEFREE_EVENTS_POLL_INTERVAL_S": "0.05", "RACEFREE_EVENTS_HEARTBEAT_S": "0.5"}
TYPES = ["AGENT_SUSPENDED", "AGENT_ACTIVATED"]


def _suspend_and_activate(server: Server) -> str:
    with server.api() as ops:
        agent = ops.agents.create("streamed")
        ops.agents.suspend(agent.id)
        ops.agents.activate(agent.id)
    return agent.id


def test_the_client_streams_events_in_order_and_resumes(start: Callable[..., Server]) -> None:
    server = start(FAST)
    agent_id = _suspend_and_activate(server)
    with server.api() as ops:
        seen: list[models.Event] = []
        for event in ops.events.stream(after_id=0, types=TYPES):
            seen.append(event)
            if len(seen) == 2:
                break
        assert [(e.type, e.data.agent_id) for e in seen] == [
            ("AGENT_SUSPENDED", agent_id),
            ("AGENT_ACTIVATED", agent_id),
        ]
        assert seen[0].id < seen[1].id
        assert seen[0].data.actor == "operator:first-start"
        # resuming after the first event gives the second again, not a gap and not a repeat
        assert next(iter(ops.events.stream(after_id=seen[0].id, types=TYPES))) == seen[1]
    # from now: what commits after the stream opened, never the agent created before it
    with server.api() as ops, ThreadPoolExecutor(1) as pool:
        first = pool.submit(lambda: next(iter(ops.events.stream(types=["AGENT_CREATED"]))))
        names = []
        while not first.done():  # until the stream is open and has seen one
            names.append(f"later-{len(names)}")
            ops.agents.create(names[-1])
            time.sleep(0.1)
        assert first.result().data.details["name"] in names


def test_the_async_client_streams_the_same_events(start: Callable[..., Server]) -> None:
    server = start(FAST)
    agent_id = _suspend_and_activate(server)

    async def main() -> list[models.Event]:
        async with AsyncClient(server.base_url, server.operator_token) as ops:
            seen: list[models.Event] = []
            async for event in ops.events.stream(after_id=0, types=TYPES):
                seen.append(event)
                if len(seen) == 2:
                    break
            return seen

    seen = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [(e.type, e.data.agent_id) for e in seen] == [
        ("AGENT_SUSPENDED", agent_id),
        ("AGENT_ACTIVATED", agent_id),
    ]


def test_stream_errors_are_catalog_exceptions(start: Callable[..., Server]) -> None:
    server = start(FAST)
    with server.api() as ops, pytest.raises(errors.ValidationError) as bad:
        next(iter(ops.events.stream(types=["not a type"])))
    assert bad.value.status == 400
    stranger = Client(server.base_url, "rf_op_not-a-token")
    with stranger, pytest.raises(errors.InvalidTokenError):
        next(iter(stranger.events.stream()))


def test_the_client_starts_with_the_last_events(start: Callable[..., Server]) -> None:
    """``last=N``: the N most recent events in stream order (N counts every type), the
    same ids as a stream from the first event ends with; ``last=0``: only new ones."""
    server = start(FAST)
    agent_id = _suspend_and_activate(server)
    with server.api() as ops:
        everything: list[models.Event] = []
        for event in ops.events.stream(after_id=0):
            everything.append(event)
            if event.type == "AGENT_ACTIVATED" and event.data.agent_id == agent_id:
                break
        tail = [e for _, e in zip(range(2), ops.events.stream(last=2), strict=False)]
        assert tail == everything[-2:]
        # the last two are SUSPENDED and ACTIVATED: with types, the matching one among them
        only = next(iter(ops.events.stream(last=2, types=["AGENT_ACTIVATED"])))
        assert only == everything[-1]
        with pytest.raises(errors.ValidationError):
            next(iter(ops.events.stream(last=1001)))
        with pytest.raises(errors.ValidationError):
            next(iter(ops.events.stream(after_id=0, last=1)))
    with server.api() as ops, ThreadPoolExecutor(1) as pool:
        first = pool.submit(lambda: next(iter(ops.events.stream(last=0))))
        while not first.done():
            ops.agents.create("new")
            time.sleep(0.1)
        assert first.result().id > everything[-1].id
