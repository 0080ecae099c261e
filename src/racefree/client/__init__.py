"""racefree's Python client: ``pip install racefree[client]`` (httpx, pydantic, tenacity).

::

    from racefree.client import Client, SessionClient

    with Client("http://127.0.0.1:8000", operator_token) as ops:
        agent = ops.agents.create("buyer")
        ops.agents.deposit(agent.id, 10_000)
        session = ops.sessions.open(agent.id)

    with SessionClient("http://127.0.0.1:8000", session.token, on_rotate=save) as me:
        me.transactions.submit(250, "shop")   # retried safely, renewed before expiry

Every error answer raises its own class (:mod:`racefree.client.errors`, one
per catalog code, all :class:`ApiError`); retryable ones are retried after
``Retry-After`` within the call's deadline (:class:`RetryPolicy`). This
package imports no server module.
"""

from __future__ import annotations

from racefree.client import errors, models
from racefree.client._async_api import AsyncClient
from racefree.client._sync_api import Client
from racefree.client._transport import RetryPolicy
from racefree.client.exceptions import (
    ApiError,
    RacefreeClientError,
    SessionLostError,
    TransportError,
)
from racefree.client.session import AsyncSessionClient, SessionClient
from racefree.client.signing import OwnerSigner

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncSessionClient",
    "Client",
    "OwnerSigner",
    "RacefreeClientError",
    "RetryPolicy",
    "SessionClient",
    "SessionLostError",
    "TransportError",
    "errors",
    "models",
]
