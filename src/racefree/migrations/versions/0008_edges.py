"""Edges (issue 9): every retired session token kept, so any of them coming back is reuse.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _retired_tokens()


def downgrade() -> None:
    op.drop_index("ix_session_retired_tokens_session_id", table_name="session_retired_tokens")
    op.drop_table("session_retired_tokens")


def _retired_tokens() -> None:
    op.create_table(
        "session_retired_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey(
                "sessions.id",
                name="fk_session_retired_tokens_session_id_sessions",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("retired_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_session_retired_tokens"),
    )
    op.create_index(
        "ix_session_retired_tokens_session_id", "session_retired_tokens", ["session_id"]
    )
    # the tokens that renewals already replaced: the last one of each session is known
    op.execute(
        "INSERT INTO session_retired_tokens (token_hash, session_id, retired_at)"
        " SELECT previous_token_hash, id, COALESCE(last_renewed_at, created_at) FROM sessions"
        " WHERE previous_token_hash IS NOT NULL"
    )
