"""Every table, defined once (docs/concepts.md, Data model).

The tables live together, below the domains, because cascades are set-based
statements that cross domains (the kill switch revokes sessions, cancels
transactions and suspends agents in one transaction) and a domain imports only
``core``. Behaviour stays in the domain that owns a table. Alembic migrations
create this schema; ``tests/core/test_schema.py`` checks they agree.

Conventions: timestamps are integer epoch seconds (UTC) unless named ``_ms``;
ids are UUIDv7 text; amounts are integers in minor units; JSON is stored as
text so both engines return the same thing.
"""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core import amounts

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _epoch(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _version() -> sa.Column[int]:
    """The row's version (``ETag``): every UPDATE bumps it, by a trigger (migration 0010)."""
    return sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(36), primary_key=True)


system_settings = sa.Table(
    "system_settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    _epoch("updated_at"),
)

operators = sa.Table(
    "operators",
    metadata,
    _id(),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    _epoch("created_at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    _epoch("at"),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("agent_id", sa.String(36), nullable=True),
    sa.Column("session_id", sa.String(36), nullable=True),
    sa.Column("transaction_id", sa.String(36), nullable=True),
    sa.Column("details", sa.Text(), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True),
    # issue 12: the id of the inserting transaction (PostgreSQL ``pg_current_xact_id()``,
    # a column default set by migration 0012; 0 on SQLite, where commit order is id order).
    # Events are read in (txid, id) order below the oldest running transaction: gap-free.
    sa.Column("txid", BigInt, nullable=False, server_default="0"),
    # sha256 hex of the previous entry's chain_hash, this id and this content (core.audit)
    sa.Column("chain_hash", sa.String(64), nullable=True),
    sa.CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),
    sa.Index(None, "event_type", "id"),
    sa.Index(None, "agent_id", "id"),
    sa.Index(None, "txid", "id"),
)

#: The head of the audit log's hash chain: one row, the serialisation point of appenders.
audit_chain = sa.Table(
    "audit_chain",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("last_id", BigInt, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

agents = sa.Table(
    "agents",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("suspension_reason", sa.String(64), nullable=True),
    sa.Column("owner_public_key", sa.String(64), nullable=True),
    sa.Column("owner_verified", sa.Integer(), nullable=False, server_default="0"),
    _version(),
    _epoch("created_at"),
    _epoch("updated_at"),
    sa.CheckConstraint("status IN ('ACTIVE', 'SUSPENDED', 'TERMINATED')", name="status"),
    sa.CheckConstraint("owner_verified IN (0, 1)", name="owner_verified"),
    sa.Index(None, "status"),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
    sa.Column("balance", sa.BigInteger(), nullable=False, server_default="0"),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
    sa.CheckConstraint(amounts.kept_check("balance"), name="balance_kept"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    _id(),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("previous_token_hash", sa.String(64), nullable=True, index=True),
    _epoch("expires_at"),
    sa.Column("expires_in", sa.BigInteger(), nullable=False),
    sa.Column("renewal_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_renewals", sa.Integer(), nullable=False),
    _epoch("absolute_expires_at"),
    _epoch("last_renewed_at", nullable=True),
    _epoch("revoked_at", nullable=True),
    sa.Column("revoke_reason", sa.String(64), nullable=True),
    sa.Column("constraints", sa.Text(), nullable=True),
    sa.Column("spent", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("reserved", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("tx_count", sa.Integer(), nullable=False, server_default="0"),
    _version(),
    _epoch("created_at"),
    sa.CheckConstraint(amounts.kept_check("reserved"), name="reserved_kept"),
    sa.CheckConstraint(amounts.kept_check("spent"), name="spent_kept"),
    sa.Index(None, "agent_id"),
    sa.Index(
        "ix_sessions_unrevoked",
        "id",
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    ),
)

#: Every token a renewal replaced, so any of them coming back is reuse (not only the last).
session_retired_tokens = sa.Table(
    "session_retired_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(36),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    _epoch("retired_at"),
)

kill_switch = sa.Table(
    "kill_switch",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("activation_id", sa.String(36), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("actor", sa.String(200), nullable=True),
    _epoch("activated_at", nullable=True),
    _epoch("recovery_started_at", nullable=True),
    _epoch("recovery_eligible_at", nullable=True),
    sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"),
    _epoch("lockout_until", nullable=True),
    _epoch("updated_at"),
    sa.CheckConstraint("state IN ('NORMAL', 'ACTIVATED', 'RECOVERING')", name="state"),
)

transactions = sa.Table(
    "transactions",
    metadata,
    _id(),
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
    _epoch("created_at"),
    _epoch("updated_at"),
    _epoch("submitted_at", nullable=True),
    _epoch("confirmed_at", nullable=True),
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
    _epoch("created_at"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.Index(None, "agent_id"),
)

plan_groups = sa.Table(
    "plan_groups",
    metadata,
    _id(),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("start_date", sa.String(10), nullable=False),
    sa.Column("end_date", sa.String(10), nullable=False),
    sa.Column("items", sa.Text(), nullable=False),
    sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("fencing_token", sa.BigInteger(), nullable=False, server_default="0"),
    _epoch("generated_at", nullable=True),
    _version(),
    _epoch("created_at"),
)

#: How many plan groups each agent owns: the counter the per-agent quota's CAS guards.
plan_group_quota = sa.Table(
    "plan_group_quota",
    metadata,
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
    sa.Column("plan_groups", sa.Integer(), nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    _id(),
    sa.Column("plan_group_id", sa.String(36), sa.ForeignKey("plan_groups.id"), nullable=False),
    sa.Column("generation", sa.Integer(), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("item", sa.String(200), nullable=False),
    sa.Column("units", sa.Integer(), nullable=False),
    sa.Index(None, "plan_group_id", "generation"),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("token", sa.BigInteger(), nullable=False),
    sa.Column("acquired_at_ms", sa.BigInteger(), nullable=False),
    sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
)

lock_tokens = sa.Table(
    "lock_tokens",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("last_token", sa.BigInteger(), nullable=False),
)

nonces = sa.Table(
    "nonces",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    _epoch("expires_at"),
    sa.Index(None, "expires_at"),  # issuing a nonce sweeps the expired ones
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    _id(),
    sa.Column(
        "operator_id",
        sa.String(36),
        sa.ForeignKey("operators.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _epoch("created_at"),
    _epoch("expires_at"),
    _epoch("ended_at", nullable=True),
    sa.Index(None, "operator_id"),
    sa.Index(None, "expires_at"),  # signing in sweeps the expired ones
)

# -- issue 12: webhooks (events out) -------------------------------------------------------

webhooks = sa.Table(
    "webhooks",
    metadata,
    _id(),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("event_types", sa.Text(), nullable=False),  # JSON list; [] = every type
    sa.Column("secret", sa.Text(), nullable=False),  # encrypted (events.secrets)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
    # the outbox position delivered up to: (txid, id) of the last event handled
    sa.Column("cursor_txid", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("cursor_id", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at_ms", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("disabled_reason", sa.Text(), nullable=True),
    _epoch("created_at"),
    _epoch("updated_at"),
    sa.CheckConstraint("status IN ('ACTIVE', 'DISABLED')", name="status"),
    sa.Index(None, "status", "next_attempt_at_ms"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _id(),
    sa.Column("webhook_id", sa.String(36), sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("event_id", sa.BigInteger(), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("outcome IN ('SUCCEEDED', 'FAILED')", name="outcome"),
    sa.Index(None, "webhook_id", "id"),
)

# -- issue 12: AutoStop rules and the per-agent figures they read --------------------------

auto_stop_rules = sa.Table(
    "auto_stop_rules",
    metadata,
    _id(),
    # '*' for a global rule, else the agent's id: one rule per (scope, type)
    sa.Column("scope", sa.String(36), nullable=False),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("params", sa.Text(), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
    _epoch("created_at"),
    _epoch("updated_at"),
    sa.UniqueConstraint("scope", "type"),
    sa.CheckConstraint("action IN ('WARN', 'SUSPEND_AGENT', 'KILL_SWITCH')", name="action"),
    sa.CheckConstraint("enabled IN (0, 1)", name="enabled"),
)

agent_figures = sa.Table(
    "agent_figures",
    metadata,
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
    # FAILED transactions since the last CONFIRMED one
    sa.Column("consecutive_failures", sa.BigInteger(), nullable=False, server_default="0"),
    # the sum of CONFIRMED amounts on UTC day ``day`` (epoch days)
    sa.Column("day", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("confirmed_today", sa.BigInteger(), nullable=False, server_default="0"),
    _epoch("updated_at"),
    sa.CheckConstraint("consecutive_failures >= 0", name="failures_not_negative"),
    sa.CheckConstraint("confirmed_today >= 0", name="confirmed_not_negative"),
    # a kept sum (core.amounts): the update saturates at 10^18 (far above any daily limit)
    sa.CheckConstraint(amounts.kept_check("confirmed_today"), name="confirmed_today_kept"),
)

# the figures rules count in SQL: an agent's transactions by time, by destination
sa.Index("ix_transactions_agent_id_created_at", transactions.c.agent_id, transactions.c.created_at)
sa.Index(
    "ix_transactions_agent_id_destination_confirmed_at",
    transactions.c.agent_id,
    transactions.c.destination,
    transactions.c.confirmed_at,
)
# an agent's unfinished transactions, whose amounts DAILY_LIMIT adds at every admission (0013)
_OPEN = sa.text("status IN ('PENDING', 'QUEUED', 'EXECUTING', 'SUBMITTED')")
sa.Index(
    "ix_transactions_agent_id_open",
    transactions.c.agent_id,
    sqlite_where=_OPEN,
    postgresql_where=_OPEN,
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # the credential's hash: keys of different clients never meet
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response_status", sa.Integer(), nullable=True),
    sa.Column("response_headers", sa.Text(), nullable=True),
    # sealed with a key derived from the credential: a stored token is unreadable without it
    sa.Column("response_body", sa.LargeBinary(), nullable=True),
    _epoch("created_at"),
    _epoch("expires_at"),
    sa.Index(None, "expires_at"),  # the sweep
)
