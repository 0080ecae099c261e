"""The session client, written once: the single-flight renewal protocol.

This file is the asyncio client; ``_sync_session.py`` (the threads client) is
generated from it by ``python -m racefree.client_codegen``, which drops
``async``/``await`` and swaps the asyncio condition for a threading one. See
:mod:`racefree.client.session` for what it guarantees.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx

from racefree.client import _async_api
from racefree.client._lease import ADJUSTABLE, DEFAULT_RENEW_AT, Lease, RotateHook, call_hook_async
from racefree.client._transport import RetryPolicy
from racefree.client.errors import InvalidTokenError
from racefree.client.exceptions import ApiError, TransportError
from racefree.client.models import Session


class AsyncSessionClient:
    """An agent's client for one session, shared by any number of asynchronous callers.

    ``token`` is the session token (``rf_sess_...``); ``on_rotate`` receives
    each new token before it is used (the asyncio client also awaits a
    coroutine function). Set ``renew_at`` to the server's
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
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._lease = Lease(token, renew_at)
        self._on_rotate = on_rotate
        self._guard = asyncio.Condition()  # guards _lease and _renewing
        self._renewing = False
        self._client = _async_api.AsyncClient(base_url, retry=retry, http=http, auth=self)
        self.sessions = AsyncOwnSession(self)
        self.transactions: _async_api.AsyncTransactions = self._client.transactions
        self.plan_groups: _async_api.AsyncPlanGroups = self._client.plan_groups

    @property
    def token(self) -> str:
        """The current token (persist it with ``on_rotate``, not by polling this)."""
        return self._lease.token

    @property
    def session_id(self) -> str | None:
        return self._lease.session_id

    async def bearer(self, *, force: bool = False) -> str:
        """The token to send now, renewing first (single-flight) when due.

        With ``force`` it renews now unless a renewal finishes while it waits.
        """
        async with self._guard:
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
                await self._guard.wait()  # another caller is renewing: use its token
        try:
            await self._refresh(force=force)
        finally:
            async with self._guard:
                self._renewing = False
                self._guard.notify_all()
        async with self._guard:
            if self._lease.lost is not None:
                raise self._lease.lost
            return self._lease.token

    async def replaced(self, used: str | None) -> bool:
        """Was ``used`` rotated out? Waits for a renewal in flight (it may be rotating it)."""
        async with self._guard:
            while self._renewing:
                await self._guard.wait()
            return self._lease.superseded(used)

    # -- renewal (only the caller that set ``_renewing`` gets here) --------------------

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
                return  # keep using the current token
            raise lease.lost or exc from None
        except TransportError:
            await self._probe()
            return
        try:
            if self._on_rotate is not None:
                await call_hook_async(self._on_rotate, renewed.token)
        finally:
            lease.rotated(renewed)

    async def _probe(self) -> None:
        """A renewal got no answer: did it rotate the token? Ask with the old one."""
        lease = self._lease
        try:
            lease.described(await self._client.sessions.current(token=lease.token))
        except InvalidTokenError:
            raise lease.lost_in_flight() from None
        except TransportError:
            pass
        lease.postpone()

    # -- lifecycle ---------------------------------------------------------------------

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


class AsyncOwnSession:
    """``session_client.sessions``: the calling session, and renewing it on demand."""

    def __init__(self, owner: AsyncSessionClient) -> None:
        self._owner = owner

    async def current(self) -> Session:
        return await self._owner._client.sessions.current()

    async def renew(self) -> Session:
        """Renew now (single-flight: concurrent calls share one renewal)."""
        await self._owner.bearer(force=True)
        return await self.current()
