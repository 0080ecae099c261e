"""``/v1/transactions``: submit (session), read (own session's agent or operator),
approve (owner signature), reject (operator)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from racefree import owners
from racefree.core.amounts import Amount
from racefree.core.errors import PROBLEM_CONTENT_TYPE, Code, IdempotencyCode, MachineCode
from racefree.http.auth import (
    OPERATOR,
    OPERATOR_AUTH_CODES,
    OPERATOR_OR_SESSION,
    SESSION,
    SESSION_AUTH_CODES,
    SessionPrincipal,
)
from racefree.http.paging import AfterId, Limit, next_after_id
from racefree.http.pipeline import Call, PipelineRoute, body_doc, run, runtime_of
from racefree.http.problems import errors
from racefree.operators import Operator
from racefree.owners.errors import OwnerCode
from racefree.sessions.errors import SessionCode
from racefree.system.errors import SystemCode
from racefree.transactions import idempotency
from racefree.transactions.errors import TransactionCode
from racefree.transactions.machine import Status, Transaction
from racefree.transactions.service import Transactions
from racefree.transactions.submission import Request as Submission

router = APIRouter(prefix="/v1", tags=["transactions"], route_class=PipelineRoute)

TX_CONFLICTS = (
    TransactionCode.TX_NOT_FOUND,
    TransactionCode.TX_ALREADY_PROCESSED,
    TransactionCode.TX_EXPIRED,
    MachineCode.INVALID_STATE_TRANSITION,
)
REPLAYED_HEADER = "Idempotent-Replayed"
EXECUTOR_RETRY_AFTER_S = 1


class TransactionIn(BaseModel):
    """``POST /v1/transactions``: amounts are strings of integer minor units."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["TRANSFER"]
    amount: Amount
    destination: Annotated[str, Field(min_length=1, max_length=200)]


class TransactionOut(BaseModel):
    transaction_id: str
    agent_id: str
    session_id: str
    type: str
    amount: str
    destination: str
    status: Status
    tier: str
    error: str | None
    attempts: int
    execute_after: str | None
    expires_at: str | None
    created_at: str | None
    updated_at: str | None
    submitted_at: str | None
    confirmed_at: str | None


class TransactionList(BaseModel):
    transactions: list[TransactionOut]
    next_after_id: str | None


def transactions_service(call: Call) -> Transactions:
    """The runtime's one :class:`Transactions` (it holds the executor)."""
    return call.runtime.transactions


def documented(*codes: Code) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for ``codes`` (one ``errors()`` call, so codes sharing a status all show)."""
    return errors(*dict.fromkeys(codes))


def _idempotency_key(raw: str | None) -> str | None:
    """The key, without the quotes of the draft's structured-field string form.

    Sent but unusable (empty, too long, not printable ASCII): 400, never ignored.
    """
    if raw is None:
        return None
    key = raw.strip(" ")
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    return idempotency.check_key(key)


def _json(body: dict[str, Any], status: int, *, replayed: bool) -> JSONResponse:
    headers = {REPLAYED_HEADER: "true"} if replayed else {}
    if status == 503:  # EXECUTOR_UNAVAILABLE is retryable: ask again (same key) after a moment
        headers["Retry-After"] = str(EXECUTOR_RETRY_AFTER_S)
    media_type = PROBLEM_CONTENT_TYPE if status >= 400 else "application/json"
    return JSONResponse(body, status_code=status, headers=headers, media_type=media_type)


@router.post(
    "/transactions",
    status_code=200,
    response_model=TransactionOut,
    responses={
        202: {"model": TransactionOut, "description": "queued (DELAY or APPROVAL tier)"},
        **documented(
            *SESSION_AUTH_CODES,
            SessionCode.SESSION_LIMIT_EXCEEDED,
            TransactionCode.INSUFFICIENT_BALANCE,
            IdempotencyCode.IDEMPOTENCY_KEY_IN_USE,
            IdempotencyCode.IDEMPOTENCY_KEY_MISMATCH,
            TransactionCode.EXECUTOR_UNAVAILABLE,
            SystemCode.SYSTEM_LOCKED,
        ),
    },
    openapi_extra=body_doc(TransactionIn),
    dependencies=[SESSION],
)
async def submit_transaction(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="1-255 printable ASCII characters"),
    ] = None,
) -> Response:
    """Submit a transaction. INSTANT/NOTIFY execute now (200 with the final status; a
    permanent failure answers with its error); DELAY/APPROVAL are queued (202).
    With ``Idempotency-Key`` a retry replays the stored response."""

    def serve(call: Call) -> JSONResponse:  # after the guard and authentication
        key = _idempotency_key(idempotency_key)
        body: TransactionIn = call.body
        outcome = transactions_service(call).submit(
            call.session.session_id,
            Submission(type=body.type, amount=int(body.amount), destination=body.destination),
            idempotency_key=key,
        )
        response = _json(outcome.reply.body, outcome.reply.status, replayed=outcome.replayed)
        if outcome.reply.status == 202:  # queued: where to follow it
            transaction_id = outcome.reply.body["transaction_id"]
            response.headers["Location"] = f"/v1/transactions/{transaction_id}"
        return response

    # brief when the ledger executes it: database work only (on SQLite, no thread hop)
    brief = runtime_of(request).transactions.in_database
    return await run(request, serve, body=TransactionIn, brief=brief)


def _visible_to(caller: SessionPrincipal | Operator | None) -> str | None:
    return caller.agent_id if isinstance(caller, SessionPrincipal) else None


def _out(txn: Transaction) -> dict[str, Any]:
    """The transaction object; ``TransactionOut`` documents it and is not re-validated per
    request (``to_public`` is the domain's one home of that shape)."""
    return txn.to_public()


@router.get(
    "/transactions",
    response_model=TransactionList,
    responses=documented(*SESSION_AUTH_CODES, *OPERATOR_AUTH_CODES),
    dependencies=[OPERATOR_OR_SESSION],
)
async def list_transactions(
    request: Request,
    status: Status | None = None,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    session_id: Annotated[str | None, Query(max_length=36)] = None,
    after_id: AfterId = None,
    limit: Limit = 100,
) -> Response:
    """Transactions in creation order; a session sees only its agent's."""

    def serve(call: Call) -> dict[str, Any]:
        own = _visible_to(call.caller)
        found = transactions_service(call).find(
            agent_id=own if own is not None else agent_id,
            session_id=session_id,
            status=status,
            after_id=after_id,
            limit=limit,
        )
        return {
            "transactions": [_out(t) for t in found],
            "next_after_id": next_after_id(found, after_id),
        }

    return await run(request, serve, brief=True)


@router.get(
    "/transactions/{transaction_id}",
    response_model=TransactionOut,
    responses=documented(*SESSION_AUTH_CODES, *OPERATOR_AUTH_CODES, TransactionCode.TX_NOT_FOUND),
    dependencies=[OPERATOR_OR_SESSION],
)
async def get_transaction(
    request: Request, transaction_id: Annotated[str, Path(max_length=36)]
) -> Response:
    def serve(call: Call) -> dict[str, Any]:
        service = transactions_service(call)
        return _out(service.get(transaction_id, agent_id=_visible_to(call.caller)))

    return await run(request, serve, brief=True)


@router.post(
    "/transactions/{transaction_id}/approve",
    response_model=TransactionOut,
    responses=documented(
        OwnerCode.OWNER_AUTH_REQUIRED,
        OwnerCode.INVALID_SIGNATURE,
        OwnerCode.INVALID_NONCE,
        OwnerCode.OWNER_MISMATCH,
        *TX_CONFLICTS,
    ),
)
async def approve_transaction(
    request: Request,
    transaction_id: Annotated[str, Path(max_length=36)],
    signature: Annotated[str | None, Header(alias=owners.HEADER, max_length=4096)] = None,
) -> Response:
    """The owner approves a queued APPROVAL transaction (signed action
    ``approve_transaction:<id>``); it then executes at once."""

    def serve(call: Call) -> dict[str, Any]:
        return _out(transactions_service(call).approve(transaction_id, signature))

    return await run(request, serve)


@router.post(
    "/transactions/{transaction_id}/reject",
    response_model=TransactionOut,
    responses=documented(*OPERATOR_AUTH_CODES, *TX_CONFLICTS),
    dependencies=[OPERATOR],
)
async def reject_transaction(
    request: Request, transaction_id: Annotated[str, Path(max_length=36)]
) -> Response:
    """An operator rejects a queued transaction: ``QUEUED -> CANCELLED``, reservation released."""

    def serve(call: Call) -> dict[str, Any]:
        service = transactions_service(call)
        return _out(service.reject(transaction_id, actor=f"operator:{call.operator.id}"))

    return await run(request, serve)
