"""``/v1/operators``: list, create (the token shown once) and revoke operator tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from racefree import operators
from racefree.core.clock import isoformat
from racefree.http.auth import OPERATOR, OPERATOR_AUTH_CODES, OPERATOR_ERRORS
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run
from racefree.http.problems import errors
from racefree.operators.errors import AuthCode

router = APIRouter(prefix="/v1/operators", tags=["operators"], route_class=PipelineRoute)

OperatorId = Annotated[str, Path(min_length=1, max_length=36)]


class CreateOperator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200, examples=["alice"])


class OperatorOut(BaseModel):
    id: str
    label: str
    created_at: str | None


class CreatedOperator(OperatorOut):
    token: str = Field(description="the operator token; shown in this response only")


class OperatorList(BaseModel):
    operators: list[OperatorOut]


class RevokedOperator(BaseModel):
    id: str
    label: str
    revoked_at: str | None


def _out(record: operators.OperatorToken) -> OperatorOut:
    return OperatorOut(id=record.id, label=record.label, created_at=isoformat(record.created_at))


def _actor(call: Call) -> str:
    return f"operator:{call.operator.label}"


def _list(call: Call) -> dict[str, Any]:
    with call.runtime.db.read() as tx:
        found = OperatorList(operators=[_out(r) for r in operators.list_tokens(tx)])
    return found.model_dump()


@router.get("", response_model=OperatorList, responses=OPERATOR_ERRORS, dependencies=[OPERATOR])
async def list_operators(request: Request) -> Response:
    """Every operator token (ids and labels; never a token or a hash)."""
    return await run(request, _list, brief=True)


def _create(call: Call) -> Response:
    body: CreateOperator = call.body
    with call.runtime.db.write() as tx:
        record, token = operators.create(
            tx, label=body.label, now=call.runtime.clock.now(), actor=_actor(call)
        )
    created = CreatedOperator(**_out(record).model_dump(), token=token)
    headers = {"Location": f"/v1/operators/{record.id}", "Cache-Control": "no-store"}
    return JSONResponse(created.model_dump(), status_code=201, headers=headers)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedOperator,
    responses=OPERATOR_ERRORS,
    openapi_extra=body_doc(CreateOperator),
    dependencies=[OPERATOR],
)
async def create_operator(request: Request) -> Response:
    """A new operator token, in this response only (only its hash is stored)."""
    return await run(request, _create, body=CreateOperator)


@router.delete(
    "/{operator_id}",
    response_model=RevokedOperator,
    responses=errors(*OPERATOR_AUTH_CODES, AuthCode.OPERATOR_NOT_FOUND),
    dependencies=[OPERATOR],
)
async def revoke_operator(operator_id: OperatorId, request: Request) -> Response:
    """Revoke an operator token: it stops working at once."""

    def serve(call: Call) -> dict[str, Any]:
        now = call.runtime.clock.now()
        with call.runtime.db.write() as tx:
            revoked = operators.revoke(tx, operator_id, now=now, actor=_actor(call))
        shown = RevokedOperator(id=revoked.id, label=revoked.label, revoked_at=isoformat(now))
        return shown.model_dump()

    return await run(request, serve)
