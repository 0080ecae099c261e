"""Transaction deadlines in milliseconds: execute_after_ms, expires_at_ms, deadline_at_ms.

Deadlines computed from whole seconds fired anywhere in (T-1, T] after the
event that set them; in milliseconds they fire at T. Existing values are
converted (seconds * 1000), so nothing queued or running changes its time.

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

RENAMES = (
    ("execute_after", "execute_after_ms"),
    ("expires_at", "expires_at_ms"),
    ("deadline_at", "deadline_at_ms"),
)


def upgrade() -> None:
    op.drop_index("ix_transactions_status_execute_after", table_name="transactions")
    for seconds, millis in RENAMES:
        op.execute(f"ALTER TABLE transactions RENAME COLUMN {seconds} TO {millis}")
        op.execute(f"UPDATE transactions SET {millis} = {millis} * 1000 WHERE {millis} IS NOT NULL")
    op.create_index(
        "ix_transactions_status_execute_after_ms", "transactions", ["status", "execute_after_ms"]
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_status_execute_after_ms", table_name="transactions")
    for seconds, millis in RENAMES:
        op.execute(f"UPDATE transactions SET {millis} = {millis} / 1000 WHERE {millis} IS NOT NULL")
        op.execute(f"ALTER TABLE transactions RENAME COLUMN {millis} TO {seconds}")
    op.create_index(
        "ix_transactions_status_execute_after", "transactions", ["status", "execute_after"]
    )
