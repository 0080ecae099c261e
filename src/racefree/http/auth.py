"""Authentication dependencies: who is calling, decided before any domain work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from racefree import operators
from racefree.core import tokens
from racefree.core.errors import ErrorCode, RacefreeError
from racefree.http.deps import RuntimeDep
from racefree.http.problems import errors
from racefree.operators import Operator

#: Responses every operator route may give (for ``responses=`` in route decorators).
OPERATOR_ERRORS = errors(ErrorCode.AUTH_REQUIRED, ErrorCode.INVALID_TOKEN, ErrorCode.FORBIDDEN)


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
