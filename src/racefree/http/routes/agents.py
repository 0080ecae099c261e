"""``/v1/agents``: create, list, read, change owner, suspend, activate, terminate, deposit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from racefree import agents, owners
from racefree.agents import Agent
from racefree.agents.errors import AgentCode
from racefree.core.amounts import Amount
from racefree.core.clock import isoformat
from racefree.core.db import Tx
from racefree.core.errors import MachineCode
from racefree.http import conditional, schemas
from racefree.http.auth import OPERATOR, OPERATOR_AUTH_CODES, OPERATOR_ERRORS
from racefree.http.paging import AfterId, Limit, next_after_id
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors
from racefree.owners.errors import OwnerCode
from racefree.transactions import cancellation

router = APIRouter(prefix="/v1/agents", tags=["agents"], route_class=PipelineRoute)

AgentId = Annotated[str, Path(min_length=1, max_length=36)]
PublicKey = Annotated[str, Field(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]{43}$")]

_FOUND = errors(OwnerCode.AGENT_NOT_FOUND)
_STATE = errors(
    OwnerCode.AGENT_NOT_FOUND,
    AgentCode.AGENT_SUSPENDED,
    AgentCode.AGENT_TERMINATED,
    MachineCode.INVALID_STATE_TRANSITION,
)


class CreateAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    owner_public_key: PublicKey | None = None


class ChangeOwner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_public_key: PublicKey | None = Field(
        description="the new owner key (base64url Ed25519), or null to remove it"
    )


class Deposit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "status": agent.status,
        "suspension_reason": agent.suspension_reason,
        "balance": str(agent.balance),
        "owner": agent.owner(),
        "created_at": isoformat(agent.created_at),
        "updated_at": isoformat(agent.updated_at),
    }


def _actor(call: Call) -> str:
    return f"operator:{call.operator.label}"


def _create(call: Call) -> Response:
    body: CreateAgent = call.body
    now = call.runtime.clock.now()
    with call.runtime.db.write() as tx:
        agent = agents.create(tx, name=body.name, now=now, actor=_actor(call))
        if body.owner_public_key is not None:
            owners.change_owner(tx, agent.id, body.owner_public_key, now=now, actor=_actor(call))
            agent = agents.get(tx, agent.id)
        headers = conditional.tag(tx, "agents", agent.id)
    headers["Location"] = f"/v1/agents/{agent.id}"
    return JSONResponse(agent_json(agent), status_code=201, headers=headers)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.AgentOut,
    responses=OPERATOR_ERRORS,
    openapi_extra=body_doc(CreateAgent),
    dependencies=[OPERATOR],
)
async def create_agent(request: Request) -> Response:
    return await run(request, _create, body=CreateAgent, status_code=201)


@router.get(
    "", response_model=schemas.AgentList, responses=OPERATOR_ERRORS, dependencies=[OPERATOR]
)
async def list_agents(
    request: Request,
    after_id: AfterId = None,
    limit: Limit = 100,
    status: Annotated[str | None, Query(pattern="^(ACTIVE|SUSPENDED|TERMINATED)$")] = None,
) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        with call.runtime.db.read() as tx:
            found = agents.list_agents(tx, after_id=after_id, limit=limit, status=status)
        return {
            "agents": [agent_json(a) for a in found],
            "next_after_id": next_after_id(found, after_id),
        }

    return await run(request, serve, brief=True)


@router.get(
    "/{agent_id}", response_model=schemas.AgentOut, responses=_FOUND, dependencies=[OPERATOR]
)
async def get_agent(agent_id: AgentId, request: Request) -> Response:
    def serve(call: Call) -> Response:
        with call.runtime.db.read() as tx:
            found = agent_json(agents.get(tx, agent_id))
            return JSONResponse(found, headers=conditional.tag(tx, "agents", agent_id))

    return await run(request, serve, brief=True)


@router.patch(
    "/{agent_id}",
    responses=errors(
        *OPERATOR_AUTH_CODES,
        OwnerCode.AGENT_NOT_FOUND,
        OwnerCode.OWNER_AUTH_REQUIRED,
        OwnerCode.INVALID_SIGNATURE,
        OwnerCode.INVALID_NONCE,
        OwnerCode.OWNER_LOCKED,
        OwnerCode.OWNER_MISMATCH,
    ),
    response_model=schemas.AgentOut,
    openapi_extra=body_doc(ChangeOwner),
    dependencies=[OPERATOR],
)
async def change_owner(
    agent_id: AgentId,
    request: Request,
    if_match: conditional.IfMatch = None,
    x_owner_signature: Annotated[str | None, Header(max_length=4096)] = None,
) -> Response:
    """Set, change or remove the owner key. A LOCKED owner's key changes only with
    ``X-Owner-Signature`` from the current owner over ``change_owner:<agent id>:<new key>``."""

    def serve(call: Call) -> Response:
        now = call.runtime.clock.now()
        new_key = call.body.owner_public_key
        expected = conditional.expected(call.runtime, if_match)
        with call.runtime.db.write() as tx:
            conditional.fence(tx, "agents", agent_id, expected)  # If-Match: the first CAS
            proof = None
            if x_owner_signature:
                action = owners.change_action(agent_id, new_key)
                proof = owners.verify(tx, x_owner_signature, action=action, now=now)
            owners.change_owner(tx, agent_id, new_key, now=now, proof=proof, actor=_actor(call))
            changed = agent_json(agents.get(tx, agent_id))
            return JSONResponse(changed, headers=conditional.tag(tx, "agents", agent_id))

    return await run(request, serve, body=ChangeOwner)


AgentMove = Callable[..., Agent]


async def _move(move: AgentMove, agent_id: str, request: Request, if_match: str | None) -> Response:
    """One status move of an agent: the If-Match CAS first, the move, the new ETag.

    For ``activate`` the agent row is fenced before the move holds the kill switch: the
    cascade never waits for a SUSPENDED agent's row, so this order cannot deadlock with it.
    """

    def serve(call: Call) -> Response:
        expected = conditional.expected(call.runtime, if_match)
        with call.runtime.db.write() as tx:
            conditional.fence(tx, "agents", agent_id, expected)
            agent = move(tx, agent_id, now=call.runtime.clock.now(), actor=_actor(call))
            headers = conditional.tag(tx, "agents", agent_id)
        return JSONResponse(agent_json(agent), headers=headers)

    return await run(request, serve)


@router.post(
    "/{agent_id}/suspend",
    response_model=schemas.AgentOut,
    responses=_STATE,
    dependencies=[OPERATOR],
)
async def suspend(
    agent_id: AgentId, request: Request, if_match: conditional.IfMatch = None
) -> Response:
    return await _move(agents.suspend, agent_id, request, if_match)


@router.post(
    "/{agent_id}/activate",
    response_model=schemas.AgentOut,
    responses=_STATE,
    dependencies=[OPERATOR],
)
async def activate(
    agent_id: AgentId, request: Request, if_match: conditional.IfMatch = None
) -> Response:
    return await _move(agents.activate, agent_id, request, if_match)


@router.post(
    "/{agent_id}/terminate",
    response_model=schemas.AgentOut,
    responses=_STATE,
    dependencies=[OPERATOR],
)
async def terminate(
    agent_id: AgentId, request: Request, if_match: conditional.IfMatch = None
) -> Response:
    """Terminate the agent for good; in the same transaction its open sessions are revoked
    and its open transactions (queued ones too) cancelled, their reservations released."""
    return await _move(_terminate, agent_id, request, if_match)


def _terminate(tx: Tx, agent_id: str, *, now: int, actor: str) -> Agent:
    agent = agents.terminate(tx, agent_id, now=now, actor=actor)
    cancellation.cancel_for_agent(tx, agent_id, now=now, actor=actor)
    return agent


@router.post(
    "/{agent_id}/deposit",
    response_model=schemas.Balance,
    responses=errors(*OPERATOR_AUTH_CODES, OwnerCode.AGENT_NOT_FOUND, AgentCode.AGENT_TERMINATED),
    openapi_extra=body_doc(Deposit),
    dependencies=[OPERATOR],
)
async def deposit(
    agent_id: AgentId, request: Request, if_match: conditional.IfMatch = None
) -> Response:
    def serve(call: Call) -> Response:
        expected = conditional.expected(call.runtime, if_match)
        with call.runtime.db.write() as tx:
            conditional.fence(tx, "agents", agent_id, expected)
            balance = agents.deposit(
                tx,
                agent_id,
                int(call.body.amount),
                now=call.runtime.clock.now(),
                actor=_actor(call),
            )
            headers = conditional.tag(tx, "agents", agent_id)
        return JSONResponse({"agent_id": agent_id, "balance": str(balance)}, headers=headers)

    return await run(request, serve, body=Deposit)
