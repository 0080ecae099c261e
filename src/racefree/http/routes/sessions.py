"""``/v1/sessions``: open, list, read, revoke (operator); current and renew (the session)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from racefree import sessions
from racefree.agents.errors import AgentCode
from racefree.core.amounts import Amount
from racefree.core.clock import isoformat
from racefree.http import conditional, schemas
from racefree.http.auth import (
    OPERATOR,
    OPERATOR_AUTH_CODES,
    OPERATOR_ERRORS,
    SESSION,
    SESSION_AUTH_CODES,
    SESSION_ERRORS,
    session_policy,
    session_token,
)
from racefree.http.paging import AfterId, Limit, next_after_id
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors
from racefree.owners.errors import OwnerCode
from racefree.sessions import Constraints, Session
from racefree.sessions.errors import SessionCode

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=PipelineRoute)

SessionId = Annotated[str, Path(min_length=1, max_length=36)]
NO_STORE = {"Cache-Control": "no-store"}


class ConstraintsIn(BaseModel):
    """Spending limits; amounts are strings of integers (minor units)."""

    model_config = ConfigDict(extra="forbid")

    max_amount_per_tx: Amount | None = None
    max_total_amount: Amount | None = None
    max_transactions: int | None = Field(default=None, ge=0, le=2**31 - 1, strict=True)


class OpenSession(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=36)
    expires_in: int | None = Field(default=None, ge=1, strict=True)
    max_renewals: int | None = Field(default=None, ge=0, le=2**31 - 1, strict=True)
    constraints: ConstraintsIn | None = None


def session_json(session: Session) -> dict[str, Any]:
    """A session object (docs/http-api.md): never a token or a hash."""
    return {
        "session_id": session.id,
        "agent_id": session.agent_id,
        "expires_at": isoformat(session.expires_at),
        "expires_at_epoch": session.expires_at,
        "expires_in": session.expires_in,
        "absolute_expires_at": isoformat(session.absolute_expires_at),
        "absolute_expires_at_epoch": session.absolute_expires_at,
        "renewal_count": session.renewal_count,
        "max_renewals": session.max_renewals,
        "last_renewed_at": isoformat(session.last_renewed_at),
        "revoked_at": isoformat(session.revoked_at),
        "revoke_reason": session.revoke_reason,
        "constraints": session.constraints.for_api(),
        "spent": str(session.spent),
        "reserved": str(session.reserved),
        "tx_count": session.tx_count,
        "created_at": isoformat(session.created_at),
    }


def _with_token(session: Session, token: str) -> dict[str, Any]:
    return {**session_json(session), "token": token}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.SessionWithToken,
    responses=errors(
        *OPERATOR_AUTH_CODES,
        OwnerCode.AGENT_NOT_FOUND,
        AgentCode.AGENT_SUSPENDED,
        AgentCode.AGENT_TERMINATED,
    ),
    openapi_extra=body_doc(OpenSession),
    dependencies=[OPERATOR],
)
async def open_session(request: Request) -> Response:
    """Open a session for an ACTIVE agent. The token is in this response only."""

    def serve(call: Call) -> Response:
        body: OpenSession = call.body
        runtime = call.runtime
        constraints = Constraints.parse(
            body.constraints.model_dump(exclude_none=True) if body.constraints else None
        )
        with runtime.db.write() as tx:
            issued = sessions.issue(
                tx,
                body.agent_id,
                now=runtime.clock.now(),
                policy=session_policy(runtime),
                expires_in=body.expires_in,
                max_renewals=body.max_renewals,
                constraints=constraints,
                actor=f"operator:{call.operator.label}",
            )
            headers = {**NO_STORE, **conditional.tag(tx, "sessions", issued.session.id)}
        headers["Location"] = f"/v1/sessions/{issued.session.id}"
        opened = _with_token(issued.session, issued.token)
        return JSONResponse(opened, status_code=201, headers=headers)

    return await run(request, serve, body=OpenSession)


@router.get(
    "", response_model=schemas.SessionList, responses=OPERATOR_ERRORS, dependencies=[OPERATOR]
)
async def list_sessions(
    request: Request,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    active: bool = False,
    after_id: AfterId = None,
    limit: Limit = 100,
) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            found = sessions.list_sessions(
                tx,
                now=call.runtime.clock.now(),
                agent_id=agent_id,
                active_only=active,
                after_id=after_id,
                limit=limit,
            )
        return {
            "sessions": [session_json(s) for s in found],
            "next_after_id": next_after_id(found, after_id),
        }

    return await run(request, serve, brief=True)


def _current(call: Call) -> Response:
    session_id = call.session.session_id
    with call.runtime.db.read() as tx:
        current = session_json(sessions.get(tx, session_id))
        return JSONResponse(current, headers=conditional.tag(tx, "sessions", session_id))


@router.get(
    "/current", response_model=schemas.SessionOut, responses=SESSION_ERRORS, dependencies=[SESSION]
)
async def current_session(request: Request) -> Response:
    """The calling session itself."""
    return await run(request, _current, brief=True)


@router.get(
    "/{session_id}",
    response_model=schemas.SessionOut,
    responses=errors(*OPERATOR_AUTH_CODES, SessionCode.SESSION_NOT_FOUND),
    dependencies=[OPERATOR],
)
async def get_session(session_id: SessionId, request: Request) -> Response:
    def serve(call: Call) -> Response:
        with call.runtime.db.read() as tx:
            found = session_json(sessions.get(tx, session_id))
            return JSONResponse(found, headers=conditional.tag(tx, "sessions", session_id))

    return await run(request, serve, brief=True)


@router.delete(
    "/{session_id}",
    response_model=schemas.RevokedSession,
    responses=errors(
        *OPERATOR_AUTH_CODES, SessionCode.SESSION_NOT_FOUND, SessionCode.SESSION_ALREADY_REVOKED
    ),
    dependencies=[OPERATOR],
)
async def revoke_session(
    session_id: SessionId, request: Request, if_match: conditional.IfMatch = None
) -> Response:
    def serve(call: Call) -> Response:
        expected = conditional.expected(call.runtime, if_match)
        with call.runtime.db.write() as tx:
            conditional.fence(tx, "sessions", session_id, expected)
            session = sessions.revoke(
                tx,
                session_id,
                now=call.runtime.clock.now(),
                actor=f"operator:{call.operator.label}",
            )
            headers = conditional.tag(tx, "sessions", session_id)
        revoked = {
            "session_id": session.id,
            "revoked_at": isoformat(session.revoked_at),
            "revoke_reason": session.revoke_reason,
        }
        return JSONResponse(revoked, headers=headers)

    return await run(request, serve)


#: The renewal's route options, shared by ``POST`` and its deprecated ``PUT`` alias.
_RENEW: dict[str, Any] = {
    "openapi_extra": {"security": [{"sessionBearer": []}]},  # it checks the token itself
    "response_model": schemas.SessionWithToken,
    "responses": errors(
        *SESSION_AUTH_CODES,
        SessionCode.SESSION_NOT_FOUND,
        SessionCode.RENEWAL_CONFLICT,
        SessionCode.RENEWAL_LIMIT_REACHED,
        SessionCode.SESSION_ABSOLUTE_LIFETIME_EXCEEDED,
        SessionCode.SESSION_RENEWAL_MISMATCH,
        SessionCode.RENEWAL_TOO_EARLY,
    ),
}


@router.post("/{session_id}/renew", **_RENEW)
@router.put(
    "/{session_id}/renew",
    deprecated=True,
    summary="Renew Session (deprecated alias of POST)",
    **_RENEW,
)
async def renew_session(session_id: SessionId, request: Request) -> Response:
    """Rotate the session's token, presenting the current one as the bearer token.

    The renewal authenticates the token itself (it must not go through session
    authentication: a renewal that lost a race presents a token that was just
    rotated out, and must hear 409 ``RENEWAL_CONFLICT``, not 401).
    """

    def serve(call: Call) -> dict[str, Any]:
        renewal = sessions.renew(
            call.runtime.db,
            session_id,
            session_token(call.headers),
            now=call.runtime.clock.now(),
            policy=session_policy(call.runtime),
            actor="session",
        )
        return _with_token(renewal.session, renewal.token)

    return await run(request, serve, headers=NO_STORE, brief=True)
