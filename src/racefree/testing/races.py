"""Barrier-started races: prove that exactly one of N concurrent attempts wins."""

from __future__ import annotations

import inspect
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Outcome:
    """What one racer got: a value or an error."""

    value: Any = None
    error: BaseException | None = None

    @property
    def won(self) -> bool:
        return self.error is None

    @property
    def code(self) -> str | None:
        """The error's catalog code (server ``RacefreeError`` or client ``ApiError``),
        else its class name; ``None`` for a win."""
        if self.error is None:
            return None
        code = getattr(self.error, "error_code", None) or getattr(self.error, "code", None)
        if isinstance(code, str) and code:
            return str(code)
        return type(self.error).__name__


class Outcomes(list[Outcome]):
    """The racers' outcomes in racer order, with :meth:`tally`."""

    def tally(self) -> Counter[str]:
        return tally(self)

    @property
    def values(self) -> list[Any]:
        """The winners' results."""
        return [o.value for o in self if o.won]


def race(n: int, attempt: Callable[..., Any], *, timeout: float = 120) -> Outcomes:
    """Run ``attempt`` in ``n`` threads released together by a barrier.

    ``attempt`` takes the racer's index (0..n-1) or no argument. Every racer's
    result or exception is kept, so a test can assert the exact winner count
    and loser codes::

        outcomes = race(10, lambda i: client.kill_switch.activate(f"racer {i}"))
        assert outcomes.tally() == {"won": 1, "KILL_SWITCH_ALREADY_ACTIVE": 9}
    """
    call = _indexed(attempt)
    barrier = threading.Barrier(n, timeout=timeout)

    def run(i: int) -> Outcome:
        barrier.wait()
        try:
            return Outcome(value=call(i))
        except BaseException as exc:
            return Outcome(error=exc)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return Outcomes(pool.map(run, range(n), timeout=timeout))


def _indexed(attempt: Callable[..., Any]) -> Callable[[int], Any]:
    try:
        params = inspect.signature(attempt).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: give it the index
        return attempt
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if positional:
        return attempt
    return lambda _i: attempt()


def tally(outcomes: list[Outcome]) -> Counter[str]:
    """``{"won": k, "<CODE>": m, ...}`` for assertions on exact winner/loser counts."""
    return Counter("won" if o.won else str(o.code) for o in outcomes)


def tally_responses(responses: list[httpx.Response]) -> Counter[str]:
    """``{"200": k, "<CODE>": m}``: 2xx answers by status, errors by their catalog code."""
    counts: Counter[str] = Counter()
    for response in responses:
        if response.status_code < 400:
            counts[str(response.status_code)] += 1
            continue
        try:
            body = response.json()
        except ValueError:
            body = None
        code = body.get("code") if isinstance(body, dict) else None
        counts[str(code or response.status_code)] += 1
    return counts


def http_race(
    n: int,
    base_url: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
    json: Any = None,
    timeout: float = 60,
    answered: Callable[[int], None] | None = None,
) -> list[httpx.Response]:
    """``n`` requests released together; one connection per racer.

    The connections are opened (``GET /health``) before the barrier, so the
    requests themselves -- not connection setup -- race. ``headers`` may be a
    function of the racer's index, for races between different credentials
    (e.g. 19 wrong passwords and one right one). ``answered(k)`` is called as the
    k-th response arrives (a test opens a gate with it, e.g. once every loser has
    answered while the winner still waits).
    """
    clients = [httpx.Client(base_url=base_url, timeout=timeout) for _ in range(n)]
    count = [0]
    counting = threading.Lock()

    def attempt(i: int) -> httpx.Response:
        response = clients[i].request(
            method, path, headers=headers(i) if callable(headers) else headers, json=json
        )
        if answered is not None:
            with counting:
                count[0] += 1
                answered(count[0])
        return response

    try:
        for c in clients:
            c.get("/health")
        outcomes = race(n, attempt, timeout=timeout)
    finally:
        for c in clients:
            c.close()
    errors = [o.error for o in outcomes if o.error is not None]
    if errors:
        raise errors[0]
    return [o.value for o in outcomes]
