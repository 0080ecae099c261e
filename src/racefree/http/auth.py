"""Authentication: who is calling, decided before any domain work and before the body is parsed.

A route declares who may call it with a dependency -- ``dependencies=[OPERATOR]``,
``[SESSION]`` or ``[OPERATOR_OR_SESSION]``. The declaration does no I/O: a
:class:`racefree.http.pipeline.PipelineRoute` reads it once, at startup, and puts
the requirement in each request's scope (run as an ordinary FastAPI dependency, it
would do the same, on the event loop). The pipeline then authenticates in its one
worker-thread hop, right after the kill switch guard, with :func:`authenticate`.
The declaration stays visible on the route (``route.dependant``), so a test can
walk every route and check who may call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from fastapi import Depends, Request
from starlette.types import Scope

from racefree import operators, sessions
from racefree.agents.errors import AgentCode
from racefree.core.errors import RacefreeError
from racefree.http.problems import errors
from racefree.operators import OPERATOR_PREFIX, Operator
from racefree.operators.errors import AuthCode
from racefree.runtime import Runtime
from racefree.sessions.errors import SessionCode
from racefree.sessions.model import SESSION_PREFIX

#: Responses every operator route may give (for ``responses=`` in route decorators).
OPERATOR_AUTH_CODES = (AuthCode.AUTH_REQUIRED, AuthCode.INVALID_TOKEN, AuthCode.FORBIDDEN)
OPERATOR_ERRORS = errors(*OPERATOR_AUTH_CODES)

Headers = Mapping[str, str]
REQUIREMENT = "racefree.auth"


class Auth(Enum):
    """Who may call a route."""

    NONE = "none"
    OPERATOR = "operator"
    SESSION = "session"
    OPERATOR_OR_SESSION = "operator or session"


async def require_operator(request: Request) -> None:
    """Declares that the route needs an operator token."""
    request.scope[REQUIREMENT] = Auth.OPERATOR


async def require_session(request: Request) -> None:
    """Declares that the route needs an agent session token."""
    request.scope[REQUIREMENT] = Auth.SESSION


async def require_operator_or_session(request: Request) -> None:
    """Declares that the route takes an operator or an agent session token."""
    request.scope[REQUIREMENT] = Auth.OPERATOR_OR_SESSION


OPERATOR: Final = Depends(require_operator)
SESSION: Final = Depends(require_session)
OPERATOR_OR_SESSION: Final = Depends(require_operator_or_session)


def bearer_token(headers: Headers) -> str:
    """The bearer token of the request, or 401 ``AUTH_REQUIRED``."""
    header = headers.get("authorization")
    if not header:
        raise RacefreeError(AuthCode.AUTH_REQUIRED, hint="send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RacefreeError(AuthCode.INVALID_TOKEN, detail="expected a Bearer token")
    return token.strip()


def authenticate(runtime: Runtime, scope: Scope, headers: Headers) -> Caller | None:
    """The caller the route declared it needs (blocking: database reads), or None."""
    requirement: Auth = scope.get(REQUIREMENT, Auth.NONE)
    if requirement is Auth.NONE:
        return None
    if requirement is Auth.OPERATOR:
        return operator_of(runtime, headers)
    if requirement is Auth.SESSION:
        return session_of(runtime, headers)
    return caller_of(runtime, headers)


def operator_of(runtime: Runtime, headers: Headers) -> Operator:
    token = bearer_token(headers)
    if token.startswith(SESSION_PREFIX):
        raise RacefreeError(
            AuthCode.FORBIDDEN, detail="agent session tokens cannot use operator routes"
        )
    with runtime.db.read() as tx:
        return operators.authenticate(tx, token)


# -- agent sessions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionPrincipal:
    """An authenticated agent session: who is calling on a session route."""

    session_id: str
    agent_id: str


#: Codes every session route may answer with; pass them to ``errors(*SESSION_AUTH_CODES, ...)``
#: together with a route's own codes (dicts merged with ``**`` would drop codes sharing a status).
SESSION_AUTH_CODES = (
    AuthCode.AUTH_REQUIRED,
    AuthCode.INVALID_TOKEN,
    SessionCode.TOKEN_EXPIRED,
    SessionCode.SESSION_REVOKED,
    SessionCode.TOKEN_REUSED,
    AuthCode.FORBIDDEN,
    AgentCode.AGENT_SUSPENDED,
    AgentCode.AGENT_TERMINATED,
)
SESSION_ERRORS = errors(*SESSION_AUTH_CODES)


def session_policy(runtime: Runtime) -> sessions.Policy:
    return sessions.Policy.from_settings(runtime.settings)


def _authenticate_session(runtime: Runtime, token: str) -> SessionPrincipal:
    found = sessions.authenticate(
        runtime.db, token, now=runtime.clock.now(), policy=session_policy(runtime)
    )
    return SessionPrincipal(session_id=found.session_id, agent_id=found.agent_id)


def session_token(headers: Headers) -> str:
    """The bearer token of a session route; an operator token is 403 ``FORBIDDEN``."""
    token = bearer_token(headers)
    if token.startswith(OPERATOR_PREFIX):
        raise RacefreeError(
            AuthCode.FORBIDDEN, detail="operator tokens cannot act as an agent session"
        )
    return token


def session_of(runtime: Runtime, headers: Headers) -> SessionPrincipal:
    return _authenticate_session(runtime, session_token(headers))


Caller = Operator | SessionPrincipal

#: Responses of routes open to an operator or an agent session.
OPERATOR_OR_SESSION_ERRORS = SESSION_ERRORS


def caller_of(runtime: Runtime, headers: Headers) -> Caller:
    """An operator or an agent session, told apart by the token's prefix."""
    token = bearer_token(headers)
    if token.startswith(SESSION_PREFIX):
        return _authenticate_session(runtime, token)
    with runtime.db.read() as tx:
        return operators.authenticate(tx, token)
