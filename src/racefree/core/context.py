"""Per-request context that lower layers may read without importing ``http``."""

from __future__ import annotations

from contextvars import ContextVar

#: The server's id of the request being served, if any; the audit log records it. Never
#: client-chosen: an audit row's request id must name one request of this server.
request_id: ContextVar[str | None] = ContextVar("racefree_request_id", default=None)

#: The ``X-Request-ID`` the client sent, if any (echoed back; kept apart from ``request_id``
#: and recorded in an audit row's ``details.client_request_id``).
client_request_id: ContextVar[str | None] = ContextVar("racefree_client_request_id", default=None)
