"""SessionClient against a real server: many callers, one renewal at a time, never a stale token.

The server renews a session after half its ``expires_in`` (4 s here, so a
renewal period is 2 s). 20 threads (or 20 tasks) share one client and keep
calling until three renewals happened: exactly three renewal requests reach
the server, every call succeeds, and no conflict or token reuse is ever seen.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from racefree.client import (
    AsyncSessionClient,
    Client,
    RetryPolicy,
    SessionClient,
    errors,
)
from racefree.testing import Server, race
from tests.client.conftest import Recorder

# renewable after 2 s, expired after 4 s: a renewal period of 2 s with 2 s to spare
FAST_SESSIONS = {"RACEFREE_SESSION_EXPIRES_IN": "4", "RACEFREE_SESSION_RENEWAL_MIN_ELAPSED": "0.5"}
RENEWALS = 3
CALLERS = 20

pytestmark = pytest.mark.server


def _agent_session(server: Server) -> tuple[str, str, str]:
    """An agent that may make many small transactions, and its session.

    20 callers submit hundreds of transactions in seconds: far past the global
    HOURLY_RATE (50 an hour) a first start seeds, which would suspend the agent
    and revoke the session mid-test. As an operator of such an agent would, the
    test gives it its own hourly rate -- replacing the global rule for this
    agent only -- rather than raising or removing the global one.
    """
    with server.api() as ops:
        agent = ops.agents.create("renewer")
        ops.agents.deposit(agent.id, 1_000_000)
        own = ops.auto_stop.set("HOURLY_RATE", {"max_tx_per_hour": 100_000}, agent_id=agent.id)
        rules = ops.auto_stop.agent(agent.id).rules
        assert [r.id for r in rules if r.type == "HOURLY_RATE"] == [own.id]
        issued = ops.sessions.open(agent.id)
    return agent.id, issued.session_id, issued.token


def _audit(server: Server, event_type: str, session_id: str) -> int:
    with server.api() as ops:
        entries = ops.audit.all(event_type=event_type)
    return sum(1 for e in entries if e.session_id == session_id)


class RotationLog:
    """``on_rotate``: checks that no request used a token before the hook saw it."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.tokens: list[str] = []

    def __call__(self, token: str) -> None:
        used = {r.headers.get("Authorization") for r in self.recorder.requests}
        assert f"Bearer {token}" not in used, "a request used the new token before on_rotate"
        self.tokens.append(token)


def _assert_clean_run(
    server: Server, recorder: Recorder, rotations: RotationLog, session_id: str, calls: int
) -> None:
    renewals = [r for r in recorder.responses if r.request.url.path.endswith("/renew")]
    statuses = [(r.status_code, r.json().get("code")) for r in renewals]
    assert len(recorder.sent("PUT", "/renew")) == RENEWALS, statuses
    assert len(rotations.tokens) == len(set(rotations.tokens)) == RENEWALS
    assert _audit(server, "SESSION_RENEWED", session_id) == RENEWALS
    assert _audit(server, "SESSION_TOKEN_REUSED", session_id) == 0
    conflicts = [r for r in recorder.responses if r.status_code == 409]
    assert conflicts == []
    with server.api() as ops:
        session = ops.sessions.get(session_id)
        stopped = ops.audit.all(event_type="AUTO_STOP_SUSPEND")
    assert (session.renewal_count, session.revoked_at) == (RENEWALS, None)
    assert stopped == []
    assert calls >= CALLERS  # every caller got through at least once


def test_twenty_threads_share_one_session_client_across_three_renewals(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start(FAST_SESSIONS)
    _, session_id, token = _agent_session(server)
    rotations = RotationLog(recorder)
    http = httpx.Client(event_hooks=recorder.hooks(), limits=httpx.Limits(max_connections=40))
    client = SessionClient(server.base_url, token, on_rotate=rotations, http=http)
    done = threading.Event()

    def caller(i: int) -> int:
        calls = 0
        while not done.is_set():
            if calls % 2:
                client.transactions.submit(1, f"shop-{i}")
            else:
                client.sessions.current()
            calls += 1
            if len(rotations.tokens) >= RENEWALS:
                done.set()  # no caller starts a call after seeing the third rotation
        return calls

    outcomes = race(CALLERS, caller, timeout=60)
    client.close()
    assert outcomes.tally() == {"won": CALLERS}, [o.error for o in outcomes if o.error]
    assert client.token == rotations.tokens[-1]
    _assert_clean_run(server, recorder, rotations, session_id, sum(outcomes.values))


def test_twenty_tasks_share_one_async_session_client_across_three_renewals(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start(FAST_SESSIONS)
    _, session_id, token = _agent_session(server)
    rotations = RotationLog(recorder)

    async def main() -> list[Any]:
        http = httpx.AsyncClient(event_hooks=recorder.async_hooks())
        async with AsyncSessionClient(
            server.base_url, token, on_rotate=rotations, http=http
        ) as client:
            done = asyncio.Event()
            start_line = asyncio.Barrier(CALLERS)

            async def caller(i: int) -> int:
                await start_line.wait()
                calls = 0
                while not done.is_set():
                    if calls % 2:
                        await client.transactions.submit(1, f"shop-{i}")
                    else:
                        await client.sessions.current()
                    calls += 1
                    if len(rotations.tokens) >= RENEWALS:
                        done.set()
                return calls

            results = await asyncio.gather(
                *(caller(i) for i in range(CALLERS)), return_exceptions=True
            )
            assert client.token == rotations.tokens[-1]
            return results

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    _assert_clean_run(server, recorder, rotations, session_id, sum(results))


def test_a_renewal_conflict_ends_the_client_and_the_old_token_is_never_sent_again(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start(FAST_SESSIONS)
    _, session_id, token = _agent_session(server)
    rival = SessionClient(server.base_url, token)
    # renew_at=1.0: this client would renew only at expiry, so it never renews first
    http = httpx.Client(event_hooks=recorder.hooks())
    mine = SessionClient(server.base_url, token, renew_at=1.0, http=http)
    mine.sessions.current()  # learns the session before the rival renews
    rival.sessions.renew()  # waits out RENEWAL_TOO_EARLY (Retry-After), then rotates
    with pytest.raises(errors.RenewalConflictError) as conflict:
        mine.sessions.renew()
    assert "renewed by another holder" in str(conflict.value)
    sent = len(recorder.requests)
    for _ in range(3):
        with pytest.raises(errors.RenewalConflictError):
            mine.transactions.list()
    assert len(recorder.requests) == sent  # nothing more went out with the old token
    assert _audit(server, "SESSION_TOKEN_REUSED", session_id) == 0
    assert rival.transactions.list().transactions == []  # the rival's session is intact
    rival.close()
    mine.close()


def test_a_client_that_guesses_the_renewable_point_too_early_learns_the_servers(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start({"RACEFREE_SESSION_EXPIRES_IN": "8"})  # renewable after 4 s
    _, session_id, token = _agent_session(server)
    once = Client(server.base_url, token, retry=RetryPolicy.none())
    with once, pytest.raises(errors.RenewalTooEarlyError) as early:
        once.sessions.renew(session_id)
    assert early.value.retryable and early.value.retry_after in (3, 4)
    http = httpx.Client(event_hooks=recorder.hooks())
    with SessionClient(server.base_url, token, renew_at=0.25, http=http) as client:
        client.sessions.current()
        _sleep_until(client._lease.renewable_at)  # due by the client's guess
        client.transactions.list()  # refused as too early: the call goes on with the token
        assert [r.status_code for r in _renewals(recorder)] == [403]
        assert client._lease.renewable_at is not None and client._lease.renewable_at > time.time()
        _sleep_until(client._lease.renewable_at)
        client.transactions.list()  # now the server's point has passed: renewed
        assert [r.status_code for r in _renewals(recorder)] == [403, 200]
        assert client.sessions.current().renewal_count == 1


def _sleep_until(epoch: float | None) -> None:
    assert epoch is not None
    time.sleep(max(0.0, epoch - time.time()) + 0.05)


def _renewals(recorder: Recorder) -> list[httpx.Response]:
    return [r for r in recorder.responses if r.request.url.path.endswith("/renew")]


def test_a_failing_on_rotate_reaches_its_caller_and_the_new_token_is_kept(
    start: Callable[..., Server],
) -> None:
    server = start({"RACEFREE_SESSION_EXPIRES_IN": "4"})
    _, session_id, token = _agent_session(server)

    def broken_disk(new_token: str) -> None:
        raise OSError("disk full")

    # renewable by the server after 2 s; this client waits 3 s, so its first call never renews
    with SessionClient(server.base_url, token, on_rotate=broken_disk, renew_at=0.75) as client:
        client.sessions.current()
        _sleep_until(client._lease.renewable_at)
        with pytest.raises(OSError, match="disk full"):
            client.transactions.list()
        assert client.token != token  # the server rotated it: the new one is the only valid one
        assert client.sessions.current().renewal_count == 1
    assert _audit(server, "SESSION_TOKEN_REUSED", session_id) == 0
