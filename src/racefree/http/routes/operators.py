"""``/v1/operators``: list, create (the token shown once) and revoke operator tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from racefree import operators
from racefree.core.clock import isoformat
from racefree.core.errors import ErrorCode
from racefree.http.auth import OPERATOR_AUTH_CODES, OPERATOR_ERRORS, OperatorDep
from racefree.http.deps import RuntimeDep
from racefree.http.problems import errors

router = APIRouter(prefix="/v1/operators", tags=["operators"])

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


@router.get("", response_model=OperatorList, responses=OPERATOR_ERRORS)
def list_operators(runtime: RuntimeDep, operator: OperatorDep) -> OperatorList:
    """Every operator token (ids and labels; never a token or a hash)."""
    with runtime.db.read() as tx:
        return OperatorList(operators=[_out(r) for r in operators.list_tokens(tx)])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedOperator,
    responses=OPERATOR_ERRORS,
)
def create_operator(
    body: CreateOperator, response: Response, runtime: RuntimeDep, operator: OperatorDep
) -> CreatedOperator:
    """A new operator token, in this response only (only its hash is stored)."""
    with runtime.db.write() as tx:
        record, token = operators.create(
            tx, label=body.label, now=runtime.clock.now(), actor=f"operator:{operator.label}"
        )
    response.headers["Location"] = f"/v1/operators/{record.id}"
    response.headers["Cache-Control"] = "no-store"
    return CreatedOperator(**_out(record).model_dump(), token=token)


@router.delete(
    "/{operator_id}",
    response_model=RevokedOperator,
    responses=errors(*OPERATOR_AUTH_CODES, ErrorCode.OPERATOR_NOT_FOUND),
)
def revoke_operator(
    operator_id: OperatorId, runtime: RuntimeDep, operator: OperatorDep
) -> RevokedOperator:
    """Revoke an operator token: it stops working at once."""
    now = runtime.clock.now()
    with runtime.db.write() as tx:
        revoked = operators.revoke(tx, operator_id, now=now, actor=f"operator:{operator.label}")
    return RevokedOperator(id=revoked.id, label=revoked.label, revoked_at=isoformat(now))
