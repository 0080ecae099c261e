"""Per-request context that lower layers may read without importing ``http``."""

from __future__ import annotations

from contextvars import ContextVar

#: The ``X-Request-ID`` of the request being served, if any; the audit log records it.
request_id: ContextVar[str | None] = ContextVar("racefree_request_id", default=None)
