"""Session clients for agents: renew before expiry, one renewal at a time.

A session token is rotated by every renewal, and the rotated-out token must
not be sent again (within 5 s it is refused, later it revokes the session).
So every thread (:class:`SessionClient`) or task (:class:`AsyncSessionClient`)
sharing a client gets its token from one :class:`~racefree.client._lease.Lease`
behind a single-flight guard:

* the first caller past the renewable point (``renew_at`` of ``expires_in``
  after the last renewal; DESIGN section 5) renews; every other caller waits
  for that renewal and then uses its token -- one renewal request however many
  callers;
* ``on_rotate(new_token)`` runs before any caller gets the new token, so a
  process can persist it first;
* a request that was already in flight with the old token and is refused
  (401 ``INVALID_TOKEN``) is resent once with the new one;
* a renewal refused as too early (the server's renewable point is later than
  ``renew_at`` guessed) moves the point and the callers go on with the current
  token; refused for good (renewal limit, absolute lifetime), the token is used
  until it expires;
* ``RENEWAL_CONFLICT`` (someone else renewed this token) ends the client: it
  raises that error from then on and never presents the old token again.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType

import httpx

from racefree.client._async_api import AsyncClient, AsyncPlanGroups, AsyncTransactions
from racefree.client._lease import ADJUSTABLE, Lease
from racefree.client._sync_api import Client, PlanGroups, Transactions
from racefree.client._transport import RetryPolicy
from racefree.client.errors import InvalidTokenError
from racefree.client.exceptions import ApiError, TransportError
from racefree.client.models import Session

RotateHook = Callable[[str], object]
AsyncRotateHook = Callable[[str], object | Awaitable[object]]

#: The fraction of ``expires_in`` after which this client renews (the server's default).
DEFAULT_RENEW_AT = 0.5


class SessionClient:
    """An agent's client for one session, safe to share between threads.

    ``token`` is the session token (``rf_sess_...``); ``on_rotate`` receives
    each new token before it is used. Set ``renew_at`` to the server's
    ``RACEFREE_SESSION_RENEWAL_MIN_ELAPSED`` if it is not 0.5 (a client that
    guesses too early learns the server's point from its answer).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        on_rotate: RotateHook | None = None,
        renew_at: float = DEFAULT_RENEW_AT,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._lease = Lease(token, renew_at)
        self._on_rotate = on_rotate
        self._guard = threading.Condition()
        self._renewing = False
        self._client = Client(base_url, retry=retry, http=http, auth=self)
        self.sessions = _OwnSession(self)
        self.transactions: Transactions = self._client.transactions
        self.plan_groups: PlanGroups = self._client.plan_groups

    @property
    def token(self) -> str:
        """The current token (persist it with ``on_rotate``, not by polling this)."""
        return self._lease.token

    @property
    def session_id(self) -> str | None:
        return self._lease.session_id

    # -- the transport's Auth -------------------------------------------------------

    def bearer(self, *, force: bool = False) -> str:
        """The token to send now, renewing first (single-flight) when due.

        With ``force`` it renews now unless a renewal finishes while it waits.
        """
        with self._guard:
            seen = self._lease.rotations
            while True:
                if self._lease.lost is not None:
                    raise self._lease.lost
                if force and self._lease.rotations != seen:
                    return self._lease.token  # a renewal ended while this caller waited
                if not self._renewing and not (force or self._lease.due()):
                    return self._lease.token
                if not self._renewing:
                    self._renewing = True
                    break
                self._guard.wait()  # another caller is renewing: use its token
        try:
            self._refresh(force=force)
        finally:
            with self._guard:
                self._renewing = False
                self._guard.notify_all()
        with self._guard:
            if self._lease.lost is not None:
                raise self._lease.lost
            return self._lease.token

    def replaced(self, used: str | None) -> bool:
        """Was ``used`` rotated out? Waits for a renewal in flight (it may be rotating it)."""
        with self._guard:
            while self._renewing:
                self._guard.wait()
            return self._lease.superseded(used)

    # -- renewal (only the caller holding ``_renewing`` gets here) --------------------

    def _refresh(self, *, force: bool) -> None:
        lease = self._lease
        if lease.session_id is None:
            lease.described(self._client.sessions.current(token=lease.token))
        if not (force or lease.due()):
            return
        assert lease.session_id is not None
        try:
            renewed = self._client.sessions.renew(lease.session_id, token=lease.token, wait=force)
        except ApiError as exc:
            lease.refused(exc)
            if lease.lost is None and not force and isinstance(exc, ADJUSTABLE):
                return  # keep using the current token
            raise lease.lost or exc from None
        except TransportError:
            self._probe()
            return
        try:
            if self._on_rotate is not None:
                self._on_rotate(renewed.token)
        finally:
            lease.rotated(renewed)

    def _probe(self) -> None:
        """A renewal got no answer: did it rotate the token? Ask with the old one."""
        lease = self._lease
        try:
            lease.described(self._client.sessions.current(token=lease.token))
        except InvalidTokenError:
            raise lease.lost_in_flight() from None
        except TransportError:
            pass
        lease.postpone()

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SessionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _OwnSession:
    """``session_client.sessions``: the calling session, and renewing it on demand."""

    def __init__(self, owner: SessionClient) -> None:
        self._owner = owner

    def current(self) -> Session:
        return self._owner._client.sessions.current()

    def renew(self) -> Session:
        """Renew now (single-flight: concurrent calls share one renewal)."""
        self._owner.bearer(force=True)
        return self.current()


class AsyncSessionClient:
    """:class:`SessionClient` for asyncio: any number of tasks share one renewal.

    ``on_rotate`` may be a plain function or a coroutine function.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        on_rotate: AsyncRotateHook | None = None,
        renew_at: float = DEFAULT_RENEW_AT,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._lease = Lease(token, renew_at)
        self._on_rotate = on_rotate
        self._guard = asyncio.Condition()
        self._renewing = False
        self._client = AsyncClient(base_url, retry=retry, http=http, auth=self)
        self.sessions = _AsyncOwnSession(self)
        self.transactions: AsyncTransactions = self._client.transactions
        self.plan_groups: AsyncPlanGroups = self._client.plan_groups

    @property
    def token(self) -> str:
        return self._lease.token

    @property
    def session_id(self) -> str | None:
        return self._lease.session_id

    async def bearer(self, *, force: bool = False) -> str:
        """The token to send now, renewing first (single-flight) when due."""
        async with self._guard:
            seen = self._lease.rotations
            while True:
                if self._lease.lost is not None:
                    raise self._lease.lost
                if force and self._lease.rotations != seen:
                    return self._lease.token
                if not self._renewing and not (force or self._lease.due()):
                    return self._lease.token
                if not self._renewing:
                    self._renewing = True
                    break
                await self._guard.wait()
        try:
            await self._refresh(force=force)
        finally:
            async with self._guard:
                self._renewing = False
                self._guard.notify_all()
        if self._lease.lost is not None:
            raise self._lease.lost
        return self._lease.token

    async def replaced(self, used: str | None) -> bool:
        async with self._guard:
            while self._renewing:
                await self._guard.wait()
            return self._lease.superseded(used)

    async def _refresh(self, *, force: bool) -> None:
        lease = self._lease
        if lease.session_id is None:
            lease.described(await self._client.sessions.current(token=lease.token))
        if not (force or lease.due()):
            return
        assert lease.session_id is not None
        try:
            renewed = await self._client.sessions.renew(
                lease.session_id, token=lease.token, wait=force
            )
        except ApiError as exc:
            lease.refused(exc)
            if lease.lost is None and not force and isinstance(exc, ADJUSTABLE):
                return
            raise lease.lost or exc from None
        except TransportError:
            await self._probe()
            return
        try:
            if self._on_rotate is not None:
                result = self._on_rotate(renewed.token)
                if inspect.isawaitable(result):
                    await result
        finally:
            lease.rotated(renewed)

    async def _probe(self) -> None:
        lease = self._lease
        try:
            lease.described(await self._client.sessions.current(token=lease.token))
        except InvalidTokenError:
            raise lease.lost_in_flight() from None
        except TransportError:
            pass
        lease.postpone()

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncSessionClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _AsyncOwnSession:
    def __init__(self, owner: AsyncSessionClient) -> None:
        self._owner = owner

    async def current(self) -> Session:
        return await self._owner._client.sessions.current()

    async def renew(self) -> Session:
        """Renew now (single-flight: concurrent calls share one renewal)."""
        await self._owner.bearer(force=True)
        return await self.current()
