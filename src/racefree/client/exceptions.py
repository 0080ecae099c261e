"""The client's exception hierarchy; the per-code classes are in :mod:`.errors`.

::

    RacefreeClientError
    +-- TransportError        no answer: connection refused, reset, timed out (after retries)
    +-- SessionLostError      a session client's token was rotated and its answer lost
    +-- ApiError              the server answered with a problem+json error
        +-- <Code>Error       one subclass per catalog code (racefree.client.errors)

An :class:`ApiError` carries what the server said: ``code``, ``status``,
``retryable``, ``retry_after`` (seconds, from ``Retry-After``), ``details``,
``request_id``, ``detail``, ``hint`` and the whole ``problem`` body.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RacefreeClientError(Exception):
    """Anything the racefree client raises."""


class TransportError(RacefreeClientError):
    """The request got no answer (connect failure, reset, timeout), retries included."""


class SessionLostError(RacefreeClientError):
    """A session client no longer holds a valid token (and will not send a stale one)."""


class ApiError(RacefreeClientError):
    """An error answer from the server (``application/problem+json``).

    Subclasses fix ``code`` and the catalog's defaults; an answer with a code
    this client does not know (a newer server) is raised as ``ApiError``
    itself, with the code it carried.
    """

    code: ClassVar[str] = ""
    default_status: ClassVar[int] = 0
    default_retryable: ClassVar[bool] = False
    domain: ClassVar[str] = ""

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        hint: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        self.status = status if status is not None else self.default_status
        self.error_code = code or self.code
        self.retryable = retryable if retryable is not None else self.default_retryable
        self.retry_after = retry_after
        self.details = details or {}
        self.request_id = request_id
        self.detail = detail or ""
        self.hint = hint
        self.problem = problem or {}
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.error_code} ({self.status}): {self.detail}"
        if self.hint:
            text += f" -- {self.hint}"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text
