"""The sessions' table. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core import amounts
from racefree.core.schema import epoch, id_column, metadata, version_column

sessions = sa.Table(
    "sessions",
    metadata,
    id_column(),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("previous_token_hash", sa.String(64), nullable=True, index=True),
    epoch("expires_at"),
    sa.Column("expires_in", sa.BigInteger(), nullable=False),
    sa.Column("renewal_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_renewals", sa.Integer(), nullable=False),
    epoch("absolute_expires_at"),
    epoch("last_renewed_at", nullable=True),
    epoch("revoked_at", nullable=True),
    sa.Column("revoke_reason", sa.String(64), nullable=True),
    sa.Column("constraints", sa.Text(), nullable=True),
    sa.Column("spent", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("reserved", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("tx_count", sa.Integer(), nullable=False, server_default="0"),
    version_column(),
    epoch("created_at"),
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
    epoch("retired_at"),
)
