"""Index an agent's unfinished transactions: AutoStop sums them on every submission.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

``DAILY_LIMIT`` (seeded on first start) adds the agent's open amounts -- its
PENDING, QUEUED, EXECUTING and SUBMITTED transactions -- to every admission.
Through ``ix_transactions_agent_id`` that read every transaction the agent ever
made; a partial index holds only the unfinished ones (a transaction leaves it
when it ends, and a payment committed at once never enters it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('PENDING', 'QUEUED', 'EXECUTING', 'SUBMITTED')")


def upgrade() -> None:
    op.create_index(
        "ix_transactions_agent_id_open",
        "transactions",
        ["agent_id"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_agent_id_open", table_name="transactions")
