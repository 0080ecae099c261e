"""Initial schema (docs/concepts.md, Data model), append-only audit triggers, the kill switch row.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _epoch(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(36), primary_key=True)


def _not_negative(name: str, kind: sa.types.TypeEngine[int] | None = None) -> sa.Column[int]:
    return sa.Column(name, kind or sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "system_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        _epoch("updated_at"),
    )
    op.create_table(
        "operators",
        _id(),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        _epoch("created_at"),
        sa.UniqueConstraint("token_hash", name="uq_operators_token_hash"),
    )
    op.create_table(
        "audit_log",
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
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name="ck_audit_log_severity"
        ),
    )
    op.create_index("ix_audit_log_event_type_id", "audit_log", ["event_type", "id"])
    op.create_index("ix_audit_log_agent_id_id", "audit_log", ["agent_id", "id"])
    _audit_log_append_only()

    op.create_table(
        "agents",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("suspension_reason", sa.String(64), nullable=True),
        sa.Column("owner_public_key", sa.String(64), nullable=True),
        _not_negative("owner_verified", sa.Integer()),
        _epoch("created_at"),
        _epoch("updated_at"),
        sa.CheckConstraint(
            "status IN ('ACTIVE', 'SUSPENDED', 'TERMINATED')", name="ck_agents_status"
        ),
        sa.CheckConstraint("owner_verified IN (0, 1)", name="ck_agents_owner_verified"),
    )
    op.create_index("ix_agents_status", "agents", ["status"])
    op.create_table(
        "accounts",
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_accounts_agent_id_agents"),
            primary_key=True,
        ),
        _not_negative("balance"),
        sa.CheckConstraint("balance >= 0", name="ck_accounts_balance_not_negative"),
    )
    op.create_table(
        "sessions",
        _id(),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_sessions_agent_id_agents"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("previous_token_hash", sa.String(64), nullable=True),
        _epoch("expires_at"),
        sa.Column("expires_in", sa.BigInteger(), nullable=False),
        _not_negative("renewal_count", sa.Integer()),
        sa.Column("max_renewals", sa.Integer(), nullable=False),
        _epoch("absolute_expires_at"),
        _epoch("last_renewed_at", nullable=True),
        _epoch("revoked_at", nullable=True),
        sa.Column("revoke_reason", sa.String(64), nullable=True),
        sa.Column("constraints", sa.Text(), nullable=True),
        _not_negative("spent"),
        _not_negative("reserved"),
        _not_negative("tx_count", sa.Integer()),
        _epoch("created_at"),
        sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
    )
    op.create_index("ix_sessions_previous_token_hash", "sessions", ["previous_token_hash"])
    op.create_index("ix_sessions_agent_id", "sessions", ["agent_id"])
    op.create_index(
        "ix_sessions_unrevoked",
        "sessions",
        ["id"],
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )

    op.create_table(
        "kill_switch",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        _not_negative("version"),
        sa.Column("activation_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        _epoch("activated_at", nullable=True),
        _epoch("recovery_started_at", nullable=True),
        _epoch("recovery_eligible_at", nullable=True),
        _not_negative("failed_attempts", sa.Integer()),
        _epoch("lockout_until", nullable=True),
        _epoch("updated_at"),
        sa.CheckConstraint(
            "state IN ('NORMAL', 'ACTIVATED', 'RECOVERING')", name="ck_kill_switch_state"
        ),
    )
    op.execute(
        sa.text(
            "INSERT INTO kill_switch (scope, state, version, failed_attempts, updated_at)"
            " VALUES ('global', 'NORMAL', 0, 0, :now)"
        ).bindparams(now=int(time.time()))
    )

    op.create_table(
        "transactions",
        _id(),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_transactions_agent_id_agents"),
            nullable=False,
        ),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("sessions.id", name="fk_transactions_session_id_sessions"),
            nullable=False,
        ),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("error", sa.String(64), nullable=True),
        _not_negative("attempts", sa.Integer()),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        _epoch("execute_after", nullable=True),
        _epoch("created_at"),
        _epoch("updated_at"),
        _epoch("submitted_at", nullable=True),
        _epoch("confirmed_at", nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_transactions_amount_positive"),
        sa.CheckConstraint(
            "status IN ('PENDING', 'QUEUED', 'EXECUTING', 'SUBMITTED', 'CONFIRMED', 'FAILED', "
            "'CANCELLED', 'EXPIRED')",
            name="ck_transactions_status",
        ),
        sa.UniqueConstraint(
            "session_id", "idempotency_key", name="uq_transactions_session_id_idempotency_key"
        ),
    )
    op.create_index(
        "ix_transactions_status_execute_after", "transactions", ["status", "execute_after"]
    )
    op.create_index("ix_transactions_agent_id", "transactions", ["agent_id"])

    op.create_table(
        "plan_groups",
        _id(),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_plan_groups_agent_id_agents"),
            nullable=True,
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("start_date", sa.String(10), nullable=False),
        sa.Column("end_date", sa.String(10), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        _not_negative("generation", sa.Integer()),
        _not_negative("fencing_token"),
        _epoch("generated_at", nullable=True),
        _epoch("created_at"),
    )
    op.create_table(
        "plans",
        _id(),
        sa.Column(
            "plan_group_id",
            sa.String(36),
            sa.ForeignKey("plan_groups.id", name="fk_plans_plan_group_id_plan_groups"),
            nullable=False,
        ),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("item", sa.String(200), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
    )
    op.create_index("ix_plans_plan_group_id_generation", "plans", ["plan_group_id", "generation"])

    op.create_table(
        "locks",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "lock_tokens",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("last_token", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        _epoch("expires_at"),
    )


def _audit_log_append_only() -> None:
    message = "audit_log is append-only"
    if op.get_bind().dialect.name == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{operation.lower()} BEFORE {operation} "
                f"ON audit_log BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'insufficient_privilege'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
    )


def downgrade() -> None:
    for table in (
        "nonces",
        "lock_tokens",
        "locks",
        "plans",
        "plan_groups",
        "transactions",
        "kill_switch",
        "sessions",
        "accounts",
        "agents",
        "audit_log",
        "operators",
        "system_settings",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_refuse_change()")
