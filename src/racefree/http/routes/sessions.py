"""``/v1/sessions``: open, list, read, revoke (operator); current and renew (the session)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from racefree import sessions
from racefree.core.amounts import Amount
from racefree.core.clock import isoformat
from racefree.core.errors import ErrorCode
from racefree.http.auth import (
    OPERATOR_AUTH_CODES,
    OPERATOR_ERRORS,
    SESSION_AUTH_CODES,
    SESSION_ERRORS,
    OperatorDep,
    SessionDep,
    session_policy,
    session_token,
)
from racefree.http.deps import RuntimeDep
from racefree.http.problems import errors
from racefree.sessions import Constraints, Session

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

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
    responses=errors(
        *OPERATOR_AUTH_CODES,
        ErrorCode.AGENT_NOT_FOUND,
        ErrorCode.AGENT_SUSPENDED,
        ErrorCode.AGENT_TERMINATED,
    ),
)
def open_session(
    body: OpenSession, response: Response, runtime: RuntimeDep, operator: OperatorDep
) -> dict[str, Any]:
    """Open a session for an ACTIVE agent. The token is in this response only."""
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
            actor=f"operator:{operator.label}",
        )
    response.headers.update(NO_STORE)
    return _with_token(issued.session, issued.token)


@router.get("", responses=OPERATOR_ERRORS)
def list_sessions(
    runtime: RuntimeDep,
    operator: OperatorDep,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    active: bool = False,
    after_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with runtime.db.read() as tx:
        found = sessions.list_sessions(
            tx,
            now=runtime.clock.now(),
            agent_id=agent_id,
            active_only=active,
            after_id=after_id,
            limit=limit,
        )
    return {
        "sessions": [session_json(s) for s in found],
        "next_after_id": found[-1].id if len(found) == limit else None,
    }


@router.get("/current", responses=SESSION_ERRORS)
def current_session(runtime: RuntimeDep, caller: SessionDep) -> dict[str, Any]:
    """The calling session itself."""
    with runtime.db.read() as tx:
        return session_json(sessions.get(tx, caller.session_id))


@router.get("/{session_id}", responses=errors(*OPERATOR_AUTH_CODES, ErrorCode.SESSION_NOT_FOUND))
def get_session(
    session_id: SessionId, runtime: RuntimeDep, operator: OperatorDep
) -> dict[str, Any]:
    with runtime.db.read() as tx:
        return session_json(sessions.get(tx, session_id))


@router.delete(
    "/{session_id}",
    responses=errors(
        *OPERATOR_AUTH_CODES, ErrorCode.SESSION_NOT_FOUND, ErrorCode.SESSION_ALREADY_REVOKED
    ),
)
def revoke_session(
    session_id: SessionId, runtime: RuntimeDep, operator: OperatorDep
) -> dict[str, Any]:
    with runtime.db.write() as tx:
        session = sessions.revoke(
            tx, session_id, now=runtime.clock.now(), actor=f"operator:{operator.label}"
        )
    return {
        "session_id": session.id,
        "revoked_at": isoformat(session.revoked_at),
        "revoke_reason": session.revoke_reason,
    }


@router.put(
    "/{session_id}/renew",
    responses=errors(
        *SESSION_AUTH_CODES,
        ErrorCode.SESSION_NOT_FOUND,
        ErrorCode.RENEWAL_CONFLICT,
        ErrorCode.RENEWAL_LIMIT_REACHED,
        ErrorCode.SESSION_ABSOLUTE_LIFETIME_EXCEEDED,
        ErrorCode.SESSION_RENEWAL_MISMATCH,
        ErrorCode.RENEWAL_TOO_EARLY,
    ),
)
def renew_session(
    session_id: SessionId, request: Request, response: Response, runtime: RuntimeDep
) -> dict[str, Any]:
    """Rotate the session's token, presenting the current one as the bearer token.

    The renewal authenticates the token itself (it must not go through the
    session dependency: a renewal that lost a race presents a token that was
    just rotated out, and must hear 409 ``RENEWAL_CONFLICT``, not 401).
    """
    renewal = sessions.renew(
        runtime.db,
        session_id,
        session_token(request),
        now=runtime.clock.now(),
        policy=session_policy(runtime),
        actor="session",
    )
    response.headers.update(NO_STORE)
    return _with_token(renewal.session, renewal.token)
