"""The kill switch guard: while the switch is not NORMAL, refuse with 503 ``SYSTEM_LOCKED``.

It must hold across processes (a second server, the CLI), so it reads the state
from the database on every guarded request: one primary-key read of one row.
There is no cache: any cache would let a process serve a request that started
after an activation committed elsewhere. Allow-listed requests
(docs/state-machines.md) skip the read altogether:

* ``GET /health``, ``/metrics``, everything under ``/v1/kill-switch``;
* the console's pages and kill-switch actions, named one by one by
  :func:`racefree.console.allowed_while_locked` (its other actions are refused,
  as a page rather than problem+json);
* operator ``GET`` requests -- checked only while locked, by the operator
  token itself (a mere ``rf_op_`` prefix is not enough).

Where the read happens (issue 11: at most one thread hop per request). The
pure-ASGI :class:`KillSwitchGuard` decides without I/O whether a request is
guarded and leaves a :class:`Ticket` in the ASGI scope. The request pipeline
(:mod:`racefree.http.pipeline`) redeems it with :func:`check` inside its single
worker-thread hop, first, before authentication and before the body is parsed.
A response made without the pipeline -- no route matched, a wrong method, a path
or query parameter refused by FastAPI's validation, the OpenAPI documents --
touched no database (every database route goes through the pipeline; the app
factory refuses to build otherwise); before such a response leaves, the
middleware redeems the ticket itself (its own hop) and answers 503 instead while
locked (on SQLite without a hop: reads are served on the loop, see
:mod:`racefree.http.pipeline`). So a route need not even exist to be refused,
and no guarded request is answered while locked.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racefree import console, operators
from racefree.core import tokens
from racefree.core.db import Dialect, Tx
from racefree.core.errors import GeneralCode, RacefreeError
from racefree.http import hop
from racefree.http.problems import add_response, errors, problem_response
from racefree.killswitch import status
from racefree.operators import OPERATOR_PREFIX
from racefree.runtime import Runtime
from racefree.system.errors import SystemCode

KILL_SWITCH_PREFIX = "/v1/kill-switch"
CONSOLE_PREFIX = "/console"
READ_METHODS = frozenset({"GET", "HEAD"})
TICKET = "racefree.guard"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def always_allowed(method: str, path: str) -> bool:
    """Requests served whatever the state, without reading it."""
    if _under(path, KILL_SWITCH_PREFIX) or console.allowed_while_locked(method, path):
        return True
    return method in READ_METHODS and path in PROBES


#: Served whatever the kill switch's state: health, metrics and the orchestrators' probes.
PROBES = frozenset({"/health", "/metrics", "/livez", "/readyz"})


class Ticket:
    """A guarded request's obligation to read the state once before it is answered."""

    __slots__ = ("redeemed",)

    def __init__(self) -> None:
        self.redeemed = False


def check(runtime: Runtime, scope: Scope) -> None:
    """Redeem the request's ticket, if any: raise 503 ``SYSTEM_LOCKED`` while locked.

    Blocking (a database read): call it from the worker thread, first.
    """
    ticket: Ticket | None = scope.get(TICKET)
    if ticket is None or ticket.redeemed:
        return
    ticket.redeemed = True
    refusal = _refusal(runtime, scope)
    if refusal is not None:
        raise refusal


def _refusal(runtime: Runtime, scope: Scope) -> RacefreeError | None:
    """None to serve the request; the 503 to answer with otherwise."""
    operator_token = _operator_token(scope) if scope["method"] in READ_METHODS else None
    with runtime.db.read() as tx:
        view = status.guard_view(tx)
        if view.state == status.NORMAL:
            return None
        if operator_token is not None and _is_operator(tx, operator_token):
            return None
    return status.system_locked(view)


def _operator_token(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and tokens.well_formed(token, OPERATOR_PREFIX):
                return token
    return None


def _is_operator(tx: Tx, token: str) -> bool:
    try:
        operators.authenticate(tx, token)
    except RacefreeError:
        return False
    return True


class KillSwitchGuard:
    """Leaves a :class:`Ticket` on guarded requests; redeems any left unredeemed."""

    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or always_allowed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        ticket = Ticket()
        scope[TICKET] = ticket
        refused = False

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and not ticket.redeemed:
                ticket.redeemed = True
                refusal = await _redeem(self.runtime, scope)
                if refusal is not None:
                    refused = True
                    await _refusal_response(scope, refusal)(scope, receive, send)
                    return
            if not refused:
                await send(message)

        await self.app(scope, receive, guarded_send)


def _refusal_response(scope: Scope, refusal: RacefreeError) -> ASGIApp:
    """The 503: a page for the console's browsers, problem+json for everyone else."""
    if _under(scope["path"], CONSOLE_PREFIX):
        return console.locked_response(refusal)
    return problem_response(refusal)


async def _redeem(runtime: Runtime, scope: Scope) -> RacefreeError | None:
    # reads on SQLite are served on the loop (see racefree.http.pipeline)
    try:
        if runtime.db.dialect is Dialect.SQLITE:
            return _refusal(runtime, scope)
        return await hop.run_sync(_refusal, runtime, scope)
    except RacefreeError as error:  # e.g. 503 DATABASE_UNAVAILABLE: the state is unknown
        return error


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the guard's 503s to every operation it can refuse: ``SYSTEM_LOCKED``, and
    ``DATABASE_UNAVAILABLE`` when the state cannot be read (a lost connection)."""
    [(status_code, doc)] = errors(
        SystemCode.SYSTEM_LOCKED, GeneralCode.DATABASE_UNAVAILABLE
    ).items()
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not always_allowed(method.upper(), path):
                add_response(operation.setdefault("responses", {}), status_code, doc)
    return schema
