"""Events out: the audit log's inserting transaction id (gap-free outbox), webhooks.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

``audit_log.txid`` defaults to ``pg_current_xact_id()`` on PostgreSQL: the
outbox reader delivers rows in ``(txid, id)`` order and only below the oldest
running transaction, so an event whose transaction commits late is never
skipped (``racefree.events.outbox``). Existing rows get 0: they all committed.
SQLite keeps 0 everywhere (one writer: commit order is id order). Adding a
column with a constant default rewrites nothing, so the append-only triggers
are not involved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("txid", _BIGINT, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN txid"
            " SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    op.create_index("ix_audit_log_txid_id", "audit_log", ["txid", "id"])
    _webhooks()
    _auto_stop()


def _auto_stop() -> None:
    op.create_table(
        "auto_stop_rules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("scope", sa.String(36), nullable=False),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_auto_stop_rules_agent_id_agents"),
            nullable=True,
        ),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("scope", "type", name="uq_auto_stop_rules_scope_type"),
        sa.CheckConstraint(
            "action IN ('WARN', 'SUSPEND_AGENT', 'KILL_SWITCH')", name="ck_auto_stop_rules_action"
        ),
        sa.CheckConstraint("enabled IN (0, 1)", name="ck_auto_stop_rules_enabled"),
    )
    op.create_table(
        "agent_figures",
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_agent_figures_agent_id_agents"),
            primary_key=True,
        ),
        sa.Column("consecutive_failures", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("day", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("confirmed_today", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "consecutive_failures >= 0", name="ck_agent_figures_failures_not_negative"
        ),
        sa.CheckConstraint("confirmed_today >= 0", name="ck_agent_figures_confirmed_not_negative"),
    )
    op.create_index(
        "ix_transactions_agent_id_created_at", "transactions", ["agent_id", "created_at"]
    )
    op.create_index(
        "ix_transactions_agent_id_destination_confirmed_at",
        "transactions",
        ["agent_id", "destination", "confirmed_at"],
    )


def _webhooks() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("cursor_txid", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cursor_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at_ms", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('ACTIVE', 'DISABLED')", name="ck_webhooks_status"),
    )
    op.create_index(
        "ix_webhooks_status_next_attempt_at_ms", "webhooks", ["status", "next_attempt_at_ms"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "webhook_id",
            sa.String(36),
            sa.ForeignKey("webhooks.id", name="fk_webhook_deliveries_webhook_id_webhooks"),
            nullable=False,
        ),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('SUCCEEDED', 'FAILED')", name="ck_webhook_deliveries_outcome"
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_id_id", "webhook_deliveries", ["webhook_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_agent_id_destination_confirmed_at", table_name="transactions")
    op.drop_index("ix_transactions_agent_id_created_at", table_name="transactions")
    op.drop_table("agent_figures")
    op.drop_table("auto_stop_rules")
    op.drop_index("ix_webhook_deliveries_webhook_id_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_status_next_attempt_at_ms", table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_index("ix_audit_log_txid_id", table_name="audit_log")
    # a plain DROP COLUMN (SQLite >= 3.35): a batch copy would lose the append-only triggers
    op.execute("ALTER TABLE audit_log DROP COLUMN txid")
