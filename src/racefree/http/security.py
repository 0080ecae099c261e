"""OpenAPI security schemes, and on every operation the credentials it takes.

Derived from the routes themselves -- the authentication dependencies they
declare and the credential headers they read -- so the document cannot claim
a credential a route does not check. A route that authenticates by hand (the
session renewal) states it in ``openapi_extra``. An operation without any
gets ``security: []``: public, said explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from racefree import owners
from racefree.http import auth
from racefree.http.problems import add_response, errors
from racefree.operators.errors import AuthCode

OPERATOR = "operatorBearer"
SESSION = "sessionBearer"
MASTER_PASSWORD = "masterPassword"  # noqa: S105 - a scheme name
OWNER_SIGNATURE = "ownerSignature"
MASTER_PASSWORD_HEADER = "X-Master-Password"  # noqa: S105 - a header name

SCHEMES: dict[str, dict[str, Any]] = {
    OPERATOR: {
        "type": "http",
        "scheme": "bearer",
        "description": "an operator token, `rf_op_...` (first start, `racefree operator "
        "create-token`, or `POST /v1/operators`)",
    },
    SESSION: {
        "type": "http",
        "scheme": "bearer",
        "description": "an agent session token, `rf_sess_...` (`POST /v1/sessions`)",
    },
    MASTER_PASSWORD: {
        "type": "apiKey",
        "in": "header",
        "name": MASTER_PASSWORD_HEADER,
        "description": "the master password (recovery and secret rotation only)",
    },
    OWNER_SIGNATURE: {
        "type": "apiKey",
        "in": "header",
        "name": owners.HEADER,
        "description": "base64url JSON {public_key, action, nonce, timestamp, signature}: "
        "Ed25519 over `racefree:<action>:<nonce>:<timestamp>`",
    },
}

Requirement = dict[str, list[str]]

UNAUTHENTICATED = errors(AuthCode.AUTH_REQUIRED, AuthCode.INVALID_TOKEN)

_BEARERS: dict[Callable[..., Any], list[Requirement]] = {
    auth.require_operator: [{OPERATOR: []}],
    auth.require_session: [{SESSION: []}],
    auth.require_operator_or_session: [{OPERATOR: []}, {SESSION: []}],
}


def _flatten(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for child in dependant.dependencies:
        yield from _flatten(child)


def requirements(route: APIRoute) -> list[Requirement]:
    """The alternatives (OR) of credential sets (AND) that ``route`` accepts."""
    declared = (route.openapi_extra or {}).get("security")
    if declared is not None:
        return list(declared)
    parts = list(_flatten(route.dependant))
    found: list[Requirement] = []
    for part in parts:
        if part.call is not None:
            found += [dict(r) for r in _BEARERS.get(part.call, [])]
    headers = {str(p.alias).lower() for part in parts for p in part.header_params}
    if MASTER_PASSWORD_HEADER.lower() in headers:
        found = [{**r, MASTER_PASSWORD: []} for r in found] or [{MASTER_PASSWORD: []}]
    if owners.HEADER.lower() in headers:
        # with a bearer it is needed only sometimes (a LOCKED owner); alone it is the credential
        found = found + [{**r, OWNER_SIGNATURE: []} for r in found] or [{OWNER_SIGNATURE: []}]
    return found


def document(routers: Iterable[APIRouter], schema: dict[str, Any]) -> dict[str, Any]:
    """Add the schemes and, on each operation of ``routers``, its ``security``."""
    schema.setdefault("components", {})["securitySchemes"] = SCHEMES
    paths = schema.get("paths", {})
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute) or route.path_format not in paths:
                continue
            for method in route.methods or ():
                operation = paths[route.path_format].get(method.lower())
                if operation is not None:
                    operation["security"] = requirements(route)
                    if operation["security"]:  # a credential can be missing or wrong: 401
                        for status_code, doc in UNAUTHENTICATED.items():
                            add_response(operation.setdefault("responses", {}), status_code, doc)
    for operations in paths.values():  # anything else (none today) is public, said so
        for operation in operations.values():
            operation.setdefault("security", [])
    return schema
