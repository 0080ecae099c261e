"""HTTP contract (issue 15): idempotency keys; row versions for ETag / If-Match.

``agents``, ``sessions`` and ``plan_groups`` get a ``version`` that every UPDATE
bumps -- by a trigger, so no statement of any domain can change a row without
changing its ETag (the kill switch has its own, moved by its machine).

Revision ID: 0010
Revises: 0008 (after 0012, issue 9's edges)
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

VERSIONED = ("agents", "sessions", "plan_groups")


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    for table in VERSIONED:
        op.add_column(
            table, sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION racefree_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN NEW.version := OLD.version + 1; RETURN NEW; END $$"
        )
        for table in VERSIONED:
            op.execute(
                f"CREATE TRIGGER {table}_version BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION racefree_bump_version()"
            )
    else:
        for table in VERSIONED:  # recursive triggers are off: the bump does not bump again
            op.execute(
                f"CREATE TRIGGER {table}_version AFTER UPDATE ON {table} FOR EACH ROW "
                f"WHEN NEW.version = OLD.version BEGIN "
                f"UPDATE {table} SET version = OLD.version + 1 WHERE id = NEW.id; END"
            )


def downgrade() -> None:
    for table in VERSIONED:
        op.execute(
            f"DROP TRIGGER IF EXISTS {table}_version"
            + (f" ON {table}" if op.get_bind().dialect.name == "postgresql" else "")
        )
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS racefree_bump_version()")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
