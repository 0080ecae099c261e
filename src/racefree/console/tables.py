"""The console's tables. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, id_column, metadata

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    id_column(),
    sa.Column(
        "operator_id",
        sa.String(36),
        sa.ForeignKey("operators.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    epoch("created_at"),
    epoch("expires_at"),
    epoch("ended_at", nullable=True),
    sa.Index(None, "operator_id"),
    sa.Index(None, "expires_at"),  # signing in sweeps the expired ones
)
