"""``/v1/kill-switch``: status, activation, and the two-step recovery (docs/http-api.md).

Everything under this prefix passes the kill switch guard, so it works while
the system is locked. Recovery steps need an operator token *and* the master
password (``X-Master-Password``): the token is checked first, so only
authenticated operators can spend master-password attempts -- nobody else can
lock the real holders out or roll a running recovery back.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from racefree import killswitch, owners
from racefree.core.clock import isoformat
from racefree.core.conditional import etag
from racefree.http import conditional, schemas
from racefree.http.auth import OPERATOR, OPERATOR_AUTH_CODES, OPERATOR_ERRORS
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors
from racefree.http.routes import owners as owner_routes
from racefree.killswitch import recovery, status
from racefree.killswitch.errors import KillSwitchCode
from racefree.operators import Operator
from racefree.operators.errors import AuthCode
from racefree.owners.errors import OwnerCode

KILL_SWITCH_PATH = "/v1/kill-switch"
router = APIRouter(prefix=KILL_SWITCH_PATH, tags=["kill-switch"], route_class=PipelineRoute)

MasterPassword = Annotated[
    str | None, Header(alias="X-Master-Password", description="the master password")
]
OwnerSignature = Annotated[
    str | None,
    Header(
        alias=owners.HEADER, max_length=4096, description="required when any agent has an owner"
    ),
]


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="why the system is stopped")


def _actor(operator: Operator) -> str:
    return f"operator:{operator.label}"


def _times(name: str, epoch: int | None) -> dict[str, Any]:
    return {name: isoformat(epoch), f"{name}_epoch": epoch}


def status_json(current: status.KillSwitchStatus, now: int) -> dict[str, Any]:
    """The switch as ``GET /v1/kill-switch`` shows it (the CLI shows the same)."""
    return {
        "state": current.state,
        "version": current.version,
        "activation_id": current.activation_id,
        "reason": current.reason,
        "actor": current.actor,
        **_times("activated_at", current.activated_at),
        **_times("recovery_eligible_at", current.recovery_eligible_at),
        "master_password_locked": current.locked_out(now),
    }


def activation_json(result: killswitch.Activation) -> dict[str, Any]:
    """An activation as ``POST /v1/kill-switch/activate`` answers it."""
    return {
        "state": result.state,
        "activation_id": result.activation_id,
        **_times("activated_at", result.activated_at),
        "sessions_revoked": result.sessions_revoked,
        "transactions_cancelled": result.transactions_cancelled,
        "agents_suspended": result.agents_suspended,
        "duration_ms": result.duration_ms,
    }


def recovery_started_json(started: recovery.RecoveryStarted) -> dict[str, Any]:
    """A started recovery as ``POST /v1/kill-switch/recovery`` answers it."""
    return {
        "state": started.state,
        **_times("recovery_eligible_at", started.recovery_eligible_at),
        "wait_seconds": started.wait_seconds,
    }


def _status(call: Call) -> Response:
    runtime = call.runtime
    with runtime.db.read() as tx:
        current = status.read(tx)
    shown = status_json(current, runtime.clock.now())
    return JSONResponse(shown, headers={"ETag": etag(current.version)})


@router.get(
    "", response_model=schemas.KillSwitchOut, responses=OPERATOR_ERRORS, dependencies=[OPERATOR]
)
async def get_kill_switch(request: Request) -> Response:
    """The switch's state and the activation it is under, if any."""
    return await run(request, _status, brief=True)


def _activate(call: Call, if_match: str | None) -> Response:
    expected = conditional.expected(call.runtime, if_match)
    with call.runtime.db.write() as tx:
        conditional.fence(tx, "kill_switch", status.GLOBAL_SCOPE, expected)
        result = killswitch.activate(
            tx,
            call.body.reason,
            now=call.runtime.clock.now(),
            actor=f"operator:{call.operator.label}",
        )
        headers = conditional.tag(tx, "kill_switch", status.GLOBAL_SCOPE)
    return JSONResponse(activation_json(result), headers=headers)


@router.post(
    "/activate",
    response_model=schemas.Activation,
    responses=errors(*OPERATOR_AUTH_CODES, KillSwitchCode.KILL_SWITCH_ALREADY_ACTIVE),
    openapi_extra=body_doc(ActivateRequest),
    dependencies=[OPERATOR],
)
async def activate(request: Request, if_match: conditional.IfMatch = None) -> Response:
    """Stop everything: revoke sessions, cancel open transactions, suspend agents (one CAS)."""
    return await run(request, lambda call: _activate(call, if_match), body=ActivateRequest)


# ``/v1/nonce`` is refused while the switch is engaged; owners sign a recovery with a
# nonce from here, on the allow-list (the same handler).
router.add_api_route(
    "/nonce",
    owner_routes.nonce,
    methods=["GET"],
    summary="Recovery nonce",
    response_model=schemas.Nonce,
)


@router.post(
    "/recovery",
    status_code=202,
    response_model=schemas.RecoveryStarted,
    responses=errors(
        *OPERATOR_AUTH_CODES,
        AuthCode.INVALID_MASTER_PASSWORD,
        OwnerCode.OWNER_AUTH_REQUIRED,
        OwnerCode.INVALID_SIGNATURE,
        OwnerCode.INVALID_NONCE,
        OwnerCode.OWNER_MISMATCH,
        AuthCode.MASTER_PASSWORD_LOCKED,
        KillSwitchCode.KILL_SWITCH_NOT_ACTIVE,
        KillSwitchCode.RECOVERY_ALREADY_STARTED,
    ),
    dependencies=[OPERATOR],
)
async def start_recovery(
    request: Request, password: MasterPassword = None, signature: OwnerSignature = None
) -> Response:
    """ACTIVATED -> RECOVERING; completing is allowed after ``recovery_eligible_at``."""

    def serve(call: Call) -> dict[str, Any]:
        runtime = call.runtime
        # the stored server policy; these settings only if none is stored and the start succeeds
        started = recovery.start(
            runtime.db,
            password,
            now=runtime.clock.now(),
            wait_s=runtime.settings.recovery_wait_s,
            owner_wait_s=runtime.settings.recovery_wait_owner_s,
            owner_signature=signature,
            actor=_actor(call.operator),
        )
        return recovery_started_json(started)

    # Location: where to follow the recovery
    return await run(request, serve, status_code=202, headers={"Location": KILL_SWITCH_PATH})


@router.post(
    "/recovery/complete",
    response_model=schemas.RecoveryCompleted,
    responses=errors(
        *OPERATOR_AUTH_CODES,
        AuthCode.INVALID_MASTER_PASSWORD,
        AuthCode.MASTER_PASSWORD_LOCKED,
        KillSwitchCode.INVALID_RECOVERY_STATE,
        KillSwitchCode.RECOVERY_WAIT_REQUIRED,
    ),
    dependencies=[OPERATOR],
)
async def complete_recovery(request: Request, password: MasterPassword = None) -> Response:
    """RECOVERING -> NORMAL; re-activates the agents the kill switch suspended."""

    def serve(call: Call) -> dict[str, Any]:
        done = recovery.complete(
            call.runtime.db, password, now=call.runtime.clock.now(), actor=_actor(call.operator)
        )
        return {"state": done.state, "agents_reactivated": done.agents_reactivated}

    return await run(request, serve)


@router.post(
    "/recovery/abort",
    response_model=schemas.RecoveryAborted,
    responses=errors(
        *OPERATOR_AUTH_CODES,
        AuthCode.INVALID_MASTER_PASSWORD,
        AuthCode.MASTER_PASSWORD_LOCKED,
        KillSwitchCode.INVALID_RECOVERY_STATE,
    ),
    dependencies=[OPERATOR],
)
async def abort_recovery(request: Request, password: MasterPassword = None) -> Response:
    """RECOVERING -> ACTIVATED."""

    def serve(call: Call) -> dict[str, Any]:
        aborted = recovery.abort(
            call.runtime.db, password, now=call.runtime.clock.now(), actor=_actor(call.operator)
        )
        return {"state": aborted.state}

    return await run(request, serve)
