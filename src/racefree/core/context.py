"""Per-request context that lower layers may read without importing ``http``."""

from __future__ import annotations

from contextvars import ContextVar

#: The ``X-Request-ID`` of the request being served, if any; the audit log records it.
request_id: ContextVar[str | None] = ContextVar("racefree_request_id", default=None)

#: Which interface a change came through (``"console"``), if not the API; the audit log
#: adds it to every row's details as ``via``, so the domain functions stay the same.
via: ContextVar[str | None] = ContextVar("racefree_via", default=None)
