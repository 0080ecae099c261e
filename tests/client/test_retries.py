"""Retries against a real server: replay after a lost answer, never sooner than Retry-After."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date

import httpx
import pytest

from racefree.client import Client, RetryPolicy, SessionClient, TransportError, errors
from racefree.testing import DelayProxy, Server, free_port
from tests.client.conftest import Recorder

pytestmark = pytest.mark.server


def test_a_post_whose_answer_is_lost_after_commit_is_replayed_not_redone(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start()
    with server.api() as ops:
        agent = ops.agents.create("buyer")
        ops.agents.deposit(agent.id, 1_000)
        token = ops.sessions.open(agent.id).token
    # the first answer to POST /v1/transactions arrives 3 s late; the client gives up after 1 s
    with DelayProxy(server.base_url, delay=3.0, match=b"POST /v1/transactions") as slow:
        http = httpx.Client(event_hooks=recorder.hooks())
        policy = RetryPolicy(deadline=20, attempt_timeout=1.0)
        with SessionClient(slow.base_url, token, retry=policy, http=http) as me:
            txn = me.transactions.submit(100, "shop")
    assert slow.delayed == 1
    posts = recorder.sent("POST", "/v1/transactions")
    assert len(posts) == 2
    keys = {p.headers["Idempotency-Key"] for p in posts}
    assert len(keys) == 1  # one key for the logical call, on every attempt
    replayed = [r for r in recorder.responses if r.request.url.path == "/v1/transactions"]
    assert [r.headers.get("Idempotent-Replayed") for r in replayed] == ["true"]
    assert txn.status == "CONFIRMED"
    with server.api() as ops:
        assert ops.agents.get(agent.id).balance == "900"  # one debit
        listed = ops.transactions.list(agent_id=agent.id).transactions
    assert [t.transaction_id for t in listed] == [txn.transaction_id]  # one transaction


def test_a_busy_plan_group_is_retried_no_sooner_than_retry_after(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    # a generation holds the group's lock ~1.5 s under a 2 s lease: the loser hears Retry-After: 2
    server = start({"RACEFREE_PLAN_GENERATION_DELAY_MS": "1500", "RACEFREE_LOCK_TTL_S": "2"})
    with server.api() as ops:
        group = ops.plan_groups.create(
            "week", date(2026, 1, 1), date(2026, 1, 7), [{"name": "a", "units": 7}]
        )
        first = threading.Thread(target=ops.plan_groups.generate, args=(group.id,))
        first.start()
        deadline = time.monotonic() + 10
        while not ops.plan_groups.lock(group.id).held:
            assert time.monotonic() < deadline, "the first generation never took the lock"
            time.sleep(0.01)
        http = httpx.Client(event_hooks=recorder.hooks())
        with Client(server.base_url, server.operator_token, http=http) as second:
            generated = second.plan_groups.generate(group.id)
        first.join()
    attempts = recorder.sent("POST", "/generate")
    answers = [r for r in recorder.responses if r.request.url.path.endswith("/generate")]
    assert [r.status_code for r in answers] == [409, 200]
    busy = answers[0]
    assert busy.json()["code"] == "PLAN_GENERATION_IN_PROGRESS"
    assert busy.headers["Retry-After"] == "2"
    waited = recorder.at(attempts[1]) - recorder.at(busy)
    assert waited >= 2.0, f"retried after {waited:.3f}s, before Retry-After: 2"
    assert generated.generation == 2


def test_a_non_retryable_error_is_raised_at_once_as_its_own_class(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start()
    http = httpx.Client(event_hooks=recorder.hooks())
    with Client(server.base_url, server.operator_token, http=http) as ops:
        agent = ops.agents.create("once")
        ops.kill_switch.activate("drill")
        with pytest.raises(errors.KillSwitchAlreadyActiveError) as caught:
            ops.kill_switch.activate("again")
        with pytest.raises(errors.SystemLockedError):  # 503, not retryable: no retry either
            ops.agents.deposit(agent.id, 5)
    assert len(recorder.sent("POST", "/v1/kill-switch/activate")) == 2  # one per logical call
    assert len(recorder.sent("POST", "/deposit")) == 1
    error = caught.value
    assert (error.error_code, error.status, error.retryable) == (
        "KILL_SWITCH_ALREADY_ACTIVE",
        409,
        False,
    )
    assert error.request_id and error.request_id.startswith("req_")


def test_a_retry_after_beyond_the_deadline_raises_now_instead_of_waiting(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    server = start({"RACEFREE_RECOVERY_WAIT_S": "30"})
    http = httpx.Client(event_hooks=recorder.hooks())
    policy = RetryPolicy(deadline=5)
    with Client(server.base_url, server.operator_token, retry=policy, http=http) as ops:
        ops.kill_switch.activate("drill")
        ops.kill_switch.start_recovery(server.master_password)
        with pytest.raises(errors.RecoveryWaitRequiredError) as caught:
            ops.kill_switch.complete_recovery(server.master_password)
    assert len(recorder.sent("POST", "/recovery/complete")) == 1  # no attempt it could not await
    assert caught.value.retryable and caught.value.retry_after is not None
    assert caught.value.retry_after > 5


def test_connection_failures_are_retried_until_the_deadline() -> None:
    policy = RetryPolicy(deadline=1.5, initial=0.05, max_backoff=0.2)
    attempts: list[float] = []
    http = httpx.Client(event_hooks={"request": [lambda r: attempts.append(time.monotonic())]})
    began = time.monotonic()
    nowhere = f"http://127.0.0.1:{free_port()}"
    with Client(nowhere, "rf_op_x", retry=policy, http=http) as c, pytest.raises(TransportError):
        c.health()
    elapsed = time.monotonic() - began
    assert len(attempts) >= 3
    assert 0.5 < elapsed <= 1.5 + 0.5


def test_a_post_retried_across_a_renewal_is_replayed_under_its_first_token(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    # The server scopes an Idempotency-Key to the credential that sent it (the token).
    # A session client that renews between two attempts of one POST must not resend it
    # under the new token: the server would not know the key and would do it twice.
    server = start({"RACEFREE_SESSION_EXPIRES_IN": "4"})  # renewable after 2 s
    with server.api() as ops:
        agent = ops.agents.create("planner")
        opened = time.monotonic()
        session = ops.sessions.open(agent.id)
    # the first answer is lost (3 s late; the client gives up after 1.5 s) and the retry
    # comes after the renewable point, so the client renews before it
    with DelayProxy(server.base_url, delay=3.0, match=b"POST /v1/plan-groups ") as slow:
        http = httpx.Client(event_hooks=recorder.hooks())
        policy = RetryPolicy(deadline=20, attempt_timeout=1.5)
        with SessionClient(slow.base_url, session.token, retry=policy, http=http) as me:
            me.sessions.current()
            time.sleep(max(0.0, opened + 1.0 - time.monotonic()))
            group = me.plan_groups.create(
                "week", date(2026, 1, 1), date(2026, 1, 7), [{"name": "a", "units": 7}]
            )
            assert me.plan_groups.get(group.id).id == group.id  # goes on, renewed if due
    assert slow.delayed == 1
    posts = recorder.sent("POST", "/v1/plan-groups")
    assert len(posts) == 2
    assert len({p.headers["Idempotency-Key"] for p in posts}) == 1
    with server.api() as ops:
        created = ops.audit.all(event_type="PLAN_GROUP_CREATED", agent_id=agent.id)
    assert len(created) == 1, f"one logical create made {len(created)} plan groups"
    assert len({p.headers["Authorization"] for p in posts}) == 1  # the key's scope


def test_a_token_that_is_not_a_valid_header_is_neither_retried_nor_repeated(
    start: Callable[..., Server], recorder: Recorder
) -> None:
    # a token read from a file keeps its newline: httpx refuses the header, quoting it
    server = start()
    token = server.operator_token
    policy = RetryPolicy(deadline=10)
    began = time.monotonic()
    http = httpx.Client(event_hooks=recorder.hooks())
    with Client(server.base_url, token + "\n", retry=policy, http=http) as ops:
        with pytest.raises(TransportError) as caught:
            ops.agents.list()
        with pytest.raises(TransportError) as streamed:
            next(iter(ops.events.stream(after_id=0)))
        assert token not in repr(ops.transport.auth)
    assert time.monotonic() - began < 5, "a request that cannot be formed was retried"
    assert len(recorder.sent("GET", "/v1/agents")) == 1
    for error in (caught.value, streamed.value):
        chain: list[BaseException] = [error]  # what a traceback (or a log line) shows
        while (link := chain[-1]).__cause__ or not link.__suppress_context__:
            if (cause := link.__cause__ or link.__context__) is None:
                break
            chain.append(cause)
        for link in chain:
            assert token not in str(link), f"the token is in {type(link).__name__}: {link}"
            assert token not in repr(link)
    assert "could not be formed" in str(caught.value)
