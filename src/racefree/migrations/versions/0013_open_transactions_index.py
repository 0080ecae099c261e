"""Index an agent's unfinished transactions; drop the index on agent_id alone.

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-30

``DAILY_LIMIT`` (seeded on first start) adds the agent's open amounts -- its
PENDING, QUEUED, EXECUTING and SUBMITTED transactions -- to every admission,
which read every transaction the agent ever made. A partial index holds only
the unfinished ones (a transaction leaves it when it ends, and a payment
committed at once never enters it).

``ix_transactions_agent_id_created_at`` (0012) starts with ``agent_id``, so it
serves every lookup by agent: ``ix_transactions_agent_id`` only made every
transaction written pay for one more index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('PENDING', 'QUEUED', 'EXECUTING', 'SUBMITTED')")


def upgrade() -> None:
    op.drop_index("ix_transactions_agent_id", table_name="transactions")
    op.create_index(
        "ix_transactions_agent_id_open",
        "transactions",
        ["agent_id"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_agent_id_open", table_name="transactions")
    op.create_index("ix_transactions_agent_id", "transactions", ["agent_id"])
