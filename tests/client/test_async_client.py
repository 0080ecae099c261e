"""AsyncClient against a real server: typed answers, per-code errors, safe retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from racefree.client import AsyncClient, OwnerSigner, RetryPolicy, TransportError, errors
from racefree.testing import Server, free_port
from tests.client.conftest import Recorder

pytestmark = pytest.mark.server


def test_an_operator_and_an_agent_work_through_the_async_client(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start()
    signer = OwnerSigner.generate()

    async def main() -> None:
        http = httpx.AsyncClient(event_hooks=recorder.async_hooks())
        async with AsyncClient(server.base_url, server.operator_token, http=http) as ops:
            agent = await ops.agents.create("async", owner_public_key=signer.public_key)
            assert (await ops.agents.deposit(agent.id, 60_500)).balance == "60500"
            issued = await ops.sessions.open(agent.id)
            async with AsyncClient(server.base_url, issued.token) as me:
                queued = await me.transactions.submit(60_000, "approval needed")
                assert (queued.status, queued.tier) == ("QUEUED", "APPROVAL")
                approved = await ops.transactions.approve(queued.transaction_id, signer)
                assert approved.status == "CONFIRMED"
                assert (await ops.agents.get(agent.id)).owner.state == "LOCKED"
                with pytest.raises(errors.InsufficientBalanceError) as poor:
                    await me.transactions.submit(900, "more than the 500 left")
            assert poor.value.status == 400 and not poor.value.retryable
            with pytest.raises(errors.AgentNotFoundError):
                await ops.agents.get("00000000-0000-0000-0000-000000000000")

    asyncio.run(main())
    assert len(recorder.sent("GET", "/v1/agents/00000000-0000-0000-0000-000000000000")) == 1


def test_the_async_client_retries_connection_failures_until_its_deadline() -> None:
    async def main() -> None:
        policy = RetryPolicy(deadline=1.0, initial=0.05, max_backoff=0.2)
        async with AsyncClient(f"http://127.0.0.1:{free_port()}", None, retry=policy) as c:
            with pytest.raises(TransportError):
                await c.health()

    asyncio.run(main())
