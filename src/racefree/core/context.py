"""Per-request context that lower layers may read without importing ``http``."""

from __future__ import annotations

from contextvars import ContextVar

#: The id of the request being served, if any: the client's acceptable ``X-Request-ID``
#: or one the server generated (:mod:`racefree.http.middleware`). Problem documents,
#: log lines and audit rows carry it.
request_id: ContextVar[str | None] = ContextVar("racefree_request_id", default=None)

#: Which interface a change came through (``"console"``), if not the API; the audit log
#: adds it to every row's details as ``via``, so the domain functions stay the same.
via: ContextVar[str | None] = ContextVar("racefree_via", default=None)
