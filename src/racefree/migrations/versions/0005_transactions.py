"""Transactions: approval expiry, execution deadlines, idempotent replays, the ledger.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("expires_at", sa.BigInteger()),
    ("deadline_at", sa.BigInteger()),
    ("reference", sa.String(200)),
    ("request_hash", sa.String(64)),
    ("response_status", sa.Integer()),
    ("response_body", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_table(
        "ledger_entries",
        sa.Column(
            "transaction_id",
            sa.String(36),
            sa.ForeignKey("transactions.id", name="fk_ledger_entries_transaction_id_transactions"),
            primary_key=True,
        ),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_ledger_entries_agent_id_agents"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_ledger_entries_amount_positive"),
    )
    op.create_index("ix_ledger_entries_agent_id", "ledger_entries", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_agent_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    with op.batch_alter_table("transactions") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
