"""``/v1/agents``: create, list, read, change owner, suspend, activate, terminate, deposit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from racefree import agents, owners
from racefree.agents import Agent
from racefree.core.amounts import Amount
from racefree.core.clock import isoformat
from racefree.core.errors import ErrorCode
from racefree.http.auth import OPERATOR_AUTH_CODES, OPERATOR_ERRORS, OperatorDep
from racefree.http.deps import RuntimeDep
from racefree.http.problems import errors

router = APIRouter(prefix="/v1/agents", tags=["agents"])

AgentId = Annotated[str, Path(min_length=1, max_length=36)]
PublicKey = Annotated[str, Field(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]{43}$")]

_FOUND = errors(ErrorCode.AGENT_NOT_FOUND)
_STATE = errors(
    ErrorCode.AGENT_NOT_FOUND,
    ErrorCode.AGENT_SUSPENDED,
    ErrorCode.AGENT_TERMINATED,
    ErrorCode.INVALID_STATE_TRANSITION,
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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=OPERATOR_ERRORS,
)
def create_agent(body: CreateAgent, runtime: RuntimeDep, operator: OperatorDep) -> dict[str, Any]:
    now = runtime.clock.now()
    actor = f"operator:{operator.label}"
    with runtime.db.write() as tx:
        agent = agents.create(tx, name=body.name, now=now, actor=actor)
        if body.owner_public_key is not None:
            owners.change_owner(tx, agent.id, body.owner_public_key, now=now, actor=actor)
            agent = agents.get(tx, agent.id)
    return agent_json(agent)


@router.get("", responses=OPERATOR_ERRORS)
def list_agents(
    runtime: RuntimeDep,
    operator: OperatorDep,
    after_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Annotated[str | None, Query(pattern="^(ACTIVE|SUSPENDED|TERMINATED)$")] = None,
) -> dict[str, Any]:
    with runtime.db.read() as tx:
        found = agents.list_agents(tx, after_id=after_id, limit=limit, status=status)
    return {
        "agents": [agent_json(a) for a in found],
        "next_after_id": found[-1].id if len(found) == limit else None,
    }


@router.get("/{agent_id}", responses=_FOUND)
def get_agent(agent_id: AgentId, runtime: RuntimeDep, operator: OperatorDep) -> dict[str, Any]:
    with runtime.db.read() as tx:
        return agent_json(agents.get(tx, agent_id))


@router.patch(
    "/{agent_id}",
    responses=errors(
        *OPERATOR_AUTH_CODES,
        ErrorCode.AGENT_NOT_FOUND,
        ErrorCode.OWNER_AUTH_REQUIRED,
        ErrorCode.INVALID_SIGNATURE,
        ErrorCode.INVALID_NONCE,
        ErrorCode.OWNER_LOCKED,
        ErrorCode.OWNER_MISMATCH,
    ),
)
def change_owner(
    agent_id: AgentId,
    body: ChangeOwner,
    runtime: RuntimeDep,
    operator: OperatorDep,
    x_owner_signature: Annotated[str | None, Header(max_length=4096)] = None,
) -> dict[str, Any]:
    """Set, change or remove the owner key. A LOCKED owner's key changes only with
    ``X-Owner-Signature`` from the current owner over ``change_owner:<agent id>:<new key>``."""
    now = runtime.clock.now()
    new_key = body.owner_public_key
    with runtime.db.write() as tx:
        proof = None
        if x_owner_signature:
            action = owners.change_action(agent_id, new_key)
            proof = owners.verify(tx, x_owner_signature, action=action, now=now)
        owners.change_owner(
            tx, agent_id, new_key, now=now, proof=proof, actor=f"operator:{operator.label}"
        )
        return agent_json(agents.get(tx, agent_id))


@router.post("/{agent_id}/suspend", responses=_STATE)
def suspend(agent_id: AgentId, runtime: RuntimeDep, operator: OperatorDep) -> dict[str, Any]:
    with runtime.db.write() as tx:
        agent = agents.suspend(
            tx, agent_id, now=runtime.clock.now(), actor=f"operator:{operator.label}"
        )
    return agent_json(agent)


@router.post("/{agent_id}/activate", responses=_STATE)
def activate(agent_id: AgentId, runtime: RuntimeDep, operator: OperatorDep) -> dict[str, Any]:
    with runtime.db.write() as tx:
        agent = agents.activate(
            tx, agent_id, now=runtime.clock.now(), actor=f"operator:{operator.label}"
        )
    return agent_json(agent)


@router.post("/{agent_id}/terminate", responses=_STATE)
def terminate(agent_id: AgentId, runtime: RuntimeDep, operator: OperatorDep) -> dict[str, Any]:
    """Terminate the agent for good; its open sessions are revoked in the same transaction."""
    with runtime.db.write() as tx:
        agent = agents.terminate(
            tx, agent_id, now=runtime.clock.now(), actor=f"operator:{operator.label}"
        )
    return agent_json(agent)


@router.post(
    "/{agent_id}/deposit",
    responses=errors(*OPERATOR_AUTH_CODES, ErrorCode.AGENT_NOT_FOUND, ErrorCode.AGENT_TERMINATED),
)
def deposit(
    agent_id: AgentId, body: Deposit, runtime: RuntimeDep, operator: OperatorDep
) -> dict[str, Any]:
    with runtime.db.write() as tx:
        balance = agents.deposit(
            tx,
            agent_id,
            int(body.amount),
            now=runtime.clock.now(),
            actor=f"operator:{operator.label}",
        )
    return {"agent_id": agent_id, "balance": str(balance)}
