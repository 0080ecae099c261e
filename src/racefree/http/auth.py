"""Authentication dependencies: who is calling, decided before any domain work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from racefree import operators, sessions
from racefree.core import tokens
from racefree.core.errors import ErrorCode, RacefreeError
from racefree.http.deps import RuntimeDep
from racefree.http.problems import errors
from racefree.operators import Operator
from racefree.runtime import Runtime

#: Responses every operator route may give (for ``responses=`` in route decorators).
OPERATOR_AUTH_CODES = (ErrorCode.AUTH_REQUIRED, ErrorCode.INVALID_TOKEN, ErrorCode.FORBIDDEN)
OPERATOR_ERRORS = errors(*OPERATOR_AUTH_CODES)


def bearer_token(request: Request) -> str:
    """The bearer token of the request, or 401 ``AUTH_REQUIRED``."""
    header = request.headers.get("authorization")
    if not header:
        raise RacefreeError(ErrorCode.AUTH_REQUIRED, hint="send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RacefreeError(ErrorCode.INVALID_TOKEN, detail="expected a Bearer token")
    return token.strip()


def require_operator(request: Request, runtime: RuntimeDep) -> Operator:
    token = bearer_token(request)
    if token.startswith(tokens.SESSION_PREFIX):
        raise RacefreeError(
            ErrorCode.FORBIDDEN, detail="agent session tokens cannot use operator routes"
        )
    with runtime.db.read() as tx:
        return operators.authenticate(tx, token)


OperatorDep = Annotated[Operator, Depends(require_operator)]


# -- agent sessions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionPrincipal:
    """An authenticated agent session: who is calling on a session route."""

    session_id: str
    agent_id: str


#: Codes every session route may answer with; pass them to ``errors(*SESSION_AUTH_CODES, ...)``
#: together with a route's own codes (dicts merged with ``**`` would drop codes sharing a status).
SESSION_AUTH_CODES = (
    ErrorCode.AUTH_REQUIRED,
    ErrorCode.INVALID_TOKEN,
    ErrorCode.TOKEN_EXPIRED,
    ErrorCode.SESSION_REVOKED,
    ErrorCode.TOKEN_REUSED,
    ErrorCode.FORBIDDEN,
    ErrorCode.AGENT_SUSPENDED,
    ErrorCode.AGENT_TERMINATED,
)
SESSION_ERRORS = errors(*SESSION_AUTH_CODES)


def session_policy(runtime: Runtime) -> sessions.Policy:
    return sessions.Policy.from_settings(runtime.settings)


def _authenticate_session(runtime: Runtime, token: str) -> SessionPrincipal:
    found = sessions.authenticate(
        runtime.db, token, now=runtime.clock.now(), policy=session_policy(runtime)
    )
    return SessionPrincipal(session_id=found.session_id, agent_id=found.agent_id)


def session_token(request: Request) -> str:
    """The bearer token of a session route; an operator token is 403 ``FORBIDDEN``."""
    token = bearer_token(request)
    if token.startswith(tokens.OPERATOR_PREFIX):
        raise RacefreeError(
            ErrorCode.FORBIDDEN, detail="operator tokens cannot act as an agent session"
        )
    return token


def require_session(request: Request, runtime: RuntimeDep) -> SessionPrincipal:
    return _authenticate_session(runtime, session_token(request))


SessionDep = Annotated[SessionPrincipal, Depends(require_session)]

Caller = Operator | SessionPrincipal

#: Responses of routes open to an operator or an agent session.
OPERATOR_OR_SESSION_ERRORS = SESSION_ERRORS


def require_operator_or_session(request: Request, runtime: RuntimeDep) -> Caller:
    """An operator or an agent session, told apart by the token's prefix."""
    token = bearer_token(request)
    if token.startswith(tokens.SESSION_PREFIX):
        return _authenticate_session(runtime, token)
    with runtime.db.read() as tx:
        return operators.authenticate(tx, token)


OperatorOrSessionDep = Annotated[Caller, Depends(require_operator_or_session)]
