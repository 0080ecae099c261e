"""Transaction codes (domain TX); INVALID_STATE_TRANSITION is core's (every machine)."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class TransactionCode(Code):
    """Transaction codes."""

    TX_NOT_FOUND = "TX_NOT_FOUND"
    TX_ALREADY_PROCESSED = "TX_ALREADY_PROCESSED"
    TX_EXPIRED = "TX_EXPIRED"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    EXECUTOR_UNAVAILABLE = "EXECUTOR_UNAVAILABLE"


register(
    ErrorSpec(
        TransactionCode.TX_NOT_FOUND,
        404,
        "TX",
        False,
        "Transaction not found",
        "the transaction does not exist",
    ),
    ErrorSpec(
        TransactionCode.TX_ALREADY_PROCESSED,
        409,
        "TX",
        False,
        "Transaction already processed",
        "another request processed this transaction first",
    ),
    ErrorSpec(
        TransactionCode.TX_EXPIRED,
        410,
        "TX",
        False,
        "Transaction expired",
        "the transaction expired before it was processed",
    ),
    ErrorSpec(
        TransactionCode.INSUFFICIENT_BALANCE,
        400,
        "TX",
        False,
        "Insufficient balance",
        "the account balance does not cover the amount",
    ),
    ErrorSpec(
        TransactionCode.EXECUTOR_UNAVAILABLE,
        503,
        "TX",
        True,
        "Executor unavailable",
        "the executor cannot take work right now",
    ),
)
