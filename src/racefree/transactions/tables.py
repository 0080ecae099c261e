"""The transactions' tables: transactions and the ledger. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, id_column, metadata

transactions = sa.Table(
    "transactions",
    metadata,
    id_column(),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
    sa.Column("session_id", sa.String(36), sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("error", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    # deadlines in milliseconds (0009): they fire at their time, not up to a second early
    sa.Column("execute_after_ms", sa.BigInteger(), nullable=True),
    epoch("created_at"),
    epoch("updated_at"),
    epoch("submitted_at", nullable=True),
    epoch("confirmed_at", nullable=True),
    # issue 5: approval expiry, execution deadline, executor reference, idempotency
    sa.Column("expires_at_ms", sa.BigInteger(), nullable=True),
    sa.Column("deadline_at_ms", sa.BigInteger(), nullable=True),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("response_status", sa.Integer(), nullable=True),
    sa.Column("response_body", sa.Text(), nullable=True),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint(
        "status IN ('PENDING', 'QUEUED', 'EXECUTING', 'SUBMITTED', 'CONFIRMED', 'FAILED', "
        "'CANCELLED', 'EXPIRED')",
        name="status",
    ),
    sa.UniqueConstraint("session_id", "idempotency_key"),
    sa.Index(None, "status", "execute_after_ms"),
    # by agent: ix_transactions_agent_id_created_at below (0013 dropped the agent_id one)
)


ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("transaction_id", sa.String(36), sa.ForeignKey("transactions.id"), primary_key=True),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False),
    epoch("created_at"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.Index(None, "agent_id"),
)
