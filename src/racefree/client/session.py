"""Session clients for agents: renew before expiry, one renewal at a time.

A session token is rotated by every renewal, and the rotated-out token must
not be sent again (within 5 s it is refused, later it revokes the session).
So every thread (:class:`SessionClient`) or task (:class:`AsyncSessionClient`)
sharing a client gets its token from one :class:`~racefree.client._lease.Lease`
behind a single-flight guard (``_async_session.py``; the synchronous client is
generated from it):

* the first caller past the renewable point (``renew_at`` of ``expires_in``
  after the last renewal, as the server's renewal guard says) renews; every other caller waits
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

from racefree.client._async_session import AsyncOwnSession, AsyncSessionClient
from racefree.client._lease import DEFAULT_RENEW_AT, RotateHook
from racefree.client._sync_session import OwnSession, SessionClient

__all__ = [
    "DEFAULT_RENEW_AT",
    "AsyncOwnSession",
    "AsyncSessionClient",
    "OwnSession",
    "RotateHook",
    "SessionClient",
]
