"""core.retry: retries only what may succeed later, and waits what the server asked."""

from __future__ import annotations

import pytest

from racefree.core.errors import LockCode, RacefreeError
from racefree.core.locks import LockBusy
from racefree.core.retry import Backoff, Decision, from_problem, retry
from racefree.plans.errors import PlanCode

NO_JITTER = Backoff(first_s=0.0, cap_s=0.0)


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retryable_errors_are_retried_after_their_retry_after() -> None:
    slept: list[float] = []
    fn = Flaky(
        RacefreeError(PlanCode.PLAN_GENERATION_IN_PROGRESS, retry_after=3),
        RacefreeError(LockCode.LOCK_TIMEOUT, retry_after=1),
    )
    assert retry(fn, backoff=NO_JITTER, sleep=slept.append) == "done"
    assert (fn.calls, slept) == (3, [3.0, 1.0])


def test_errors_that_cannot_succeed_later_are_raised_at_once() -> None:
    fn = Flaky(RacefreeError(LockCode.LOCK_LOST))
    with pytest.raises(RacefreeError) as raised:
        retry(fn, sleep=lambda s: None)
    assert (raised.value.code, fn.calls) == (LockCode.LOCK_LOST, 1)


def test_lock_busy_is_retried_until_the_lease_would_have_run_out() -> None:
    slept: list[float] = []
    busy = LockBusy("k", "alice", 0, 2500, now_ms=1000)
    assert retry(Flaky(busy), backoff=NO_JITTER, sleep=slept.append) == "done"
    assert slept == [2.0]


def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    fn = Flaky(*(RacefreeError(LockCode.LOCK_TIMEOUT) for _ in range(5)))
    with pytest.raises(RacefreeError):
        retry(fn, attempts=3, sleep=lambda s: None)
    assert fn.calls == 3


def test_a_retry_after_past_the_deadline_gives_up_instead_of_waiting() -> None:
    slept: list[float] = []
    fn = Flaky(RacefreeError(LockCode.LOCK_TIMEOUT, retry_after=60))
    with pytest.raises(RacefreeError):
        retry(fn, deadline_s=5, sleep=slept.append)
    assert (fn.calls, slept) == (1, [])


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(first_s=0.1, cap_s=0.3)
    assert all(0 <= backoff.delay(n) <= min(0.3, 0.1 * 2**n) for n in range(10) for _ in range(20))


def test_problem_responses_decide_by_retryable_and_retry_after_header() -> None:
    body = {"code": "PLAN_GENERATION_IN_PROGRESS", "retryable": True}
    assert from_problem(409, {"Retry-After": "4"}, body) == Decision(True, 4.0)
    assert from_problem(409, {}, {"retryable": False}) == Decision(False, None)
    assert from_problem(502, {}, "not json") == Decision(True, None)
