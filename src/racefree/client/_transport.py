"""HTTP with retries that are safe: one home for how every call is sent.

A logical call (:class:`Call`) may take several attempts. An attempt is
repeated when:

* the server answered a *retryable* catalog error (``retryable: true``) --
  never sooner than its ``Retry-After`` -- or something in front of it answered
  429/502/503/504 without racefree's problem body;
* the connection failed before the request went out (refused, connect or
  pool timeout);
* the answer was lost after the request went out (read timeout, reset) --
  only for calls marked ``replay_safe``: reads, and writes that carry an
  ``Idempotency-Key``, which is generated once per logical call and sent
  unchanged on every attempt, so the server replays instead of redoing;
* a session token was replaced by a renewal while the request was in flight
  (401 ``INVALID_TOKEN`` for a token the auth has since rotated out): resent at
  once with the new token -- part of the same attempt, no backoff -- which is
  safe because authentication refused the request before anything ran.

The server keeps an ``Idempotency-Key`` under the token that sent it. So once
an attempt of a keyed write may have run (its answer was lost, or the server
said the key is still in use), every later attempt presents that same token:
under a renewed one the server would not know the key and would run the write
again. If a renewal has rotated that token out meanwhile, the call ends with
:class:`TransportError` (outcome unknown) instead of being resent.

A request that cannot be formed (``httpx.LocalProtocolError``: a header value
with a newline, say a token read from a file) is not retried, and its error
never repeats the header (a token or password) it refused.

Waits are jittered exponential backoff (tenacity), raised to ``Retry-After``,
and every attempt fits in the call's total deadline: when the next wait
would pass it, the last error is raised instead.
"""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_random_exponential,
)

from racefree.client.errors import BY_CODE, IdempotencyKeyInUseError, InvalidTokenError
from racefree.client.exceptions import ApiError, TransportError

M = TypeVar("M", bound=BaseModel)

PROBLEM_CONTENT_TYPE = "application/problem+json"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "racefree-client/0.1"
#: Methods whose retries need an Idempotency-Key to be safe.
MUTATING = frozenset({"POST", "PATCH", "DELETE"})
#: Failures before the request left this process: always safe to try again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Statuses worth another attempt when the answer is not racefree's own problem+json
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
#: A request refused because a renewal rotated its token is resent with the new one,
#: at once (authentication refused it before anything ran); this bounds the loop.
MAX_ROTATIONS_PER_ATTEMPT = 4


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a logical call tries.

    ``deadline`` bounds the whole call (attempts and waits); ``attempt_timeout``
    one attempt; backoff starts near ``initial`` seconds and is capped at
    ``max_backoff`` (both before ``Retry-After`` raises a wait).
    """

    deadline: float = 30.0
    attempt_timeout: float = 30.0
    initial: float = 0.1
    max_backoff: float = 5.0

    @classmethod
    def none(cls) -> RetryPolicy:
        """A single attempt (the deadline is one attempt's timeout)."""
        return cls(deadline=0.0)


@dataclass(frozen=True, slots=True)
class Call(Generic[M]):
    """One logical API call: the request and the model of its success answer."""

    method: str
    path: str
    model: type[M]
    params: Mapping[str, Any] | None = None
    json: Any = None
    #: not in the repr: may carry ``X-Master-Password``
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: may an attempt whose answer was lost be sent again?
    replay_safe: bool = True
    #: wait out retryable error answers (``Retry-After``)? False: raise them at once
    wait_retryable: bool = True
    idempotency_key: str | None = None
    #: the bearer token for this call instead of the auth's (a renewal presents its own)
    token: str | None = field(default=None, repr=False)


class Auth(Protocol):
    """Where a synchronous transport gets its bearer token."""

    def bearer(self) -> str | None: ...

    def replaced(self, used: str | None) -> bool:
        """Was ``used`` rotated out by a renewal (waiting for one in flight to end)?"""
        ...


class AsyncAuth(Protocol):
    async def bearer(self) -> str | None: ...

    async def replaced(self, used: str | None) -> bool: ...


@dataclass(frozen=True, slots=True)
class StaticToken:
    """A token that never changes (an operator token); usable by both transports."""

    value: str | None = field(repr=False)

    def bearer(self) -> str | None:
        return self.value

    def replaced(self, used: str | None) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class AsyncStaticToken:
    value: str | None = field(repr=False)

    async def bearer(self) -> str | None:
        return self.value

    async def replaced(self, used: str | None) -> bool:
        return False


# -- what every attempt shares ------------------------------------------------------


@dataclass(slots=True)
class _Attempt:
    """The state of one logical call across its attempts."""

    call: Call[Any]
    policy: RetryPolicy
    idempotency_key: str | None
    started: float = field(default_factory=time.monotonic)
    used_token: str | None = field(default=None, repr=False)
    #: the token an earlier attempt of this keyed write may have run under (the key's scope)
    pinned: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, call: Call[Any], policy: RetryPolicy) -> _Attempt:
        key = call.idempotency_key
        if key is None and call.method in MUTATING:
            key = str(uuid.uuid4())
        return cls(call, policy, key)

    def may_have_run(self) -> None:
        """The last request may have run (or still runs) on the server under its token:
        a keyed write's later attempts must present that token, the key's scope."""
        if self.idempotency_key is not None and self.call.token is None:
            self.pinned = self.used_token

    def unknown(self) -> TransportError:
        """A keyed write that may have run under a token a renewal has rotated out."""
        return TransportError(
            f"{self.call.method} {self.call.path}: an earlier attempt may have run under a "
            "session token that a renewal has since rotated out; not resent under the new "
            f"token (the server keeps Idempotency-Key {self.idempotency_key} under the token "
            "that sent it, so it would run again): its outcome is unknown, look it up"
        )

    def secrets(self) -> list[str]:
        """What an error message must not repeat: the token and the call's header values."""
        found = [self.used_token or "", *self.call.headers.values()]
        return [s for s in found if len(s) >= 4]

    def timeout(self) -> float:
        if self.policy.deadline <= 0:  # a single attempt
            return self.policy.attempt_timeout
        remaining = self.policy.deadline - (time.monotonic() - self.started)
        return max(0.1, min(self.policy.attempt_timeout, remaining))

    def request(self, token: str | None) -> dict[str, Any]:
        self.used_token = token
        headers = {"User-Agent": USER_AGENT, **self.call.headers}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = self.idempotency_key
        return {
            "method": self.call.method,
            "url": self.call.path,
            "params": clean_params(self.call.params),
            "json": self.call.json,
            "headers": headers,
            "timeout": self.timeout(),
        }


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters as sent: ``None`` dropped, booleans as ``true``/``false``."""
    if params is None:
        return None
    return {k: _param(v) for k, v in params.items() if v is not None}


def _param(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def parse(call: Call[M], response: httpx.Response) -> M:
    """The call's model from a success answer, or the catalog exception of an error."""
    if response.status_code >= 400:
        raise error_from(response)
    return call.model.model_validate(response.json())


def error_from(response: httpx.Response) -> ApiError:
    """The exception for an error answer: its catalog class, or ``ApiError`` if unknown."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"HTTP_{response.status_code}")
    cls = BY_CODE.get(code, ApiError)
    retryable = body.get("retryable")
    if not isinstance(retryable, bool):  # not a problem+json: a proxy or gateway answered
        retryable = response.status_code in TRANSIENT_STATUSES
    return cls(
        str(body.get("detail") or response.reason_phrase),
        status=response.status_code,
        code=code,
        retryable=retryable,
        retry_after=retry_after(response),
        details=body.get("details") if isinstance(body.get("details"), dict) else None,
        request_id=body.get("request_id") or response.headers.get("X-Request-ID"),
        hint=body.get("hint"),
        problem=body,
    )


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), ``None`` when absent."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _should_retry(exc: BaseException, attempt: _Attempt) -> bool:
    if isinstance(exc, ApiError):
        return exc.retryable and attempt.call.wait_retryable
    if isinstance(exc, _NOT_SENT):
        return True
    if isinstance(exc, httpx.LocalProtocolError):  # the request cannot be formed: never will
        return False
    return isinstance(exc, httpx.TransportError) and attempt.call.replay_safe


def _waiter(attempt: _Attempt) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(
        multiplier=attempt.policy.initial, max=attempt.policy.max_backoff
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        floor = exc.retry_after if isinstance(exc, ApiError) and exc.retry_after else 0.0
        return max(backoff(state), floor)

    return wait


def _retry_kwargs(attempt: _Attempt) -> dict[str, Any]:
    return {
        "stop": stop_before_delay(attempt.policy.deadline),
        "wait": _waiter(attempt),
        "retry": retry_if_exception(lambda exc: _should_retry(exc, attempt)),
        "reraise": True,
    }


def _rotating(call: Call[Any]) -> TransportError:
    return TransportError(
        f"{call.method} {call.path}: the session token was rotated under this request "
        f"{MAX_ROTATIONS_PER_ATTEMPT} times in a row"
    )


def transport_error(
    exc: httpx.TransportError, method: str, path: str, secrets: list[str]
) -> TransportError:
    """``TransportError`` for ``exc``, never repeating a token or password it may quote.

    Raise it ``from`` :func:`cause` (the original, or ``None`` when that quotes a secret).
    """
    if isinstance(exc, httpx.LocalProtocolError):  # h11 quotes the header value it refused
        return TransportError(
            f"{method} {path}: LocalProtocolError: the request could not be formed, e.g. a "
            "header value (the token, a password) with a newline or another control "
            "character; nothing was sent"
        )
    text = str(exc)
    for secret in secrets:
        text = text.replace(secret, "***")
    return TransportError(f"{method} {path}: {type(exc).__name__}: {text}")


def cause(exc: httpx.TransportError, secrets: list[str]) -> BaseException | None:
    """The exception to chain: ``exc`` unless its message quotes a secret."""
    text = str(exc)
    if isinstance(exc, httpx.LocalProtocolError) or any(s in text for s in secrets):
        return None
    return exc


# -- the two transports -------------------------------------------------------------


class Transport:
    """Synchronous: sends :class:`Call` objects through one ``httpx.Client``."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        *,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.http = http or httpx.Client(base_url=base_url)
        if not str(self.http.base_url):  # a caller's own client (hooks, TLS) may omit it
            self.http.base_url = httpx.URL(base_url)

    def send(self, call: Call[M]) -> M:
        attempt = _Attempt.of(call, self.retry)

        def once() -> M:
            for _ in range(MAX_ROTATIONS_PER_ATTEMPT):
                token = self._token(attempt)
                try:
                    return parse(call, self.http.request(**attempt.request(token)))
                except InvalidTokenError:
                    if call.token is not None or not self.auth.replaced(token):
                        raise
                    if attempt.pinned is not None:  # an earlier attempt may have run under it
                        raise attempt.unknown() from None
                except (IdempotencyKeyInUseError, httpx.TransportError) as exc:
                    if not isinstance(exc, _NOT_SENT):
                        attempt.may_have_run()
                    raise
            raise _rotating(call)

        try:
            result: M = Retrying(**_retry_kwargs(attempt))(once)
        except httpx.TransportError as exc:
            secrets = attempt.secrets()
            error = transport_error(exc, call.method, call.path, secrets)
            raise error from cause(exc, secrets)
        return result

    def _token(self, attempt: _Attempt) -> str | None:
        """The call's own token, else the token a keyed write is pinned to, else the auth's."""
        if attempt.call.token is not None:
            return attempt.call.token
        if attempt.pinned is None:
            return self.auth.bearer()
        if self.auth.replaced(attempt.pinned):
            raise attempt.unknown()
        return attempt.pinned

    def close(self) -> None:
        self.http.close()


class AsyncTransport:
    """Asynchronous: sends :class:`Call` objects through one ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        auth: AsyncAuth,
        *,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.http = http or httpx.AsyncClient(base_url=base_url)
        if not str(self.http.base_url):
            self.http.base_url = httpx.URL(base_url)

    async def send(self, call: Call[M]) -> M:
        attempt = _Attempt.of(call, self.retry)

        async def once() -> M:
            for _ in range(MAX_ROTATIONS_PER_ATTEMPT):
                token = await self._token(attempt)
                try:
                    return parse(call, await self.http.request(**attempt.request(token)))
                except InvalidTokenError:
                    if call.token is not None or not await self.auth.replaced(token):
                        raise
                    if attempt.pinned is not None:  # an earlier attempt may have run under it
                        raise attempt.unknown() from None
                except (IdempotencyKeyInUseError, httpx.TransportError) as exc:
                    if not isinstance(exc, _NOT_SENT):
                        attempt.may_have_run()
                    raise
            raise _rotating(call)

        retrying = AsyncRetrying(**_retry_kwargs(attempt))
        try:
            result: M = await retrying(once)
        except httpx.TransportError as exc:
            secrets = attempt.secrets()
            error = transport_error(exc, call.method, call.path, secrets)
            raise error from cause(exc, secrets)
        return result

    async def _token(self, attempt: _Attempt) -> str | None:
        """The call's own token, else the token a keyed write is pinned to, else the auth's."""
        if attempt.call.token is not None:
            return attempt.call.token
        if attempt.pinned is None:
            return await self.auth.bearer()
        if await self.auth.replaced(attempt.pinned):
            raise attempt.unknown()
        return attempt.pinned

    async def close(self) -> None:
        await self.http.aclose()


__all__ = [
    "AsyncAuth",
    "AsyncStaticToken",
    "AsyncTransport",
    "Auth",
    "Call",
    "RetryPolicy",
    "StaticToken",
    "Transport",
]
