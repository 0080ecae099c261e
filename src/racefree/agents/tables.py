"""The agents' tables: agents and their accounts. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core import amounts
from racefree.core.schema import epoch, id_column, metadata, version_column

agents = sa.Table(
    "agents",
    metadata,
    id_column(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("suspension_reason", sa.String(64), nullable=True),
    sa.Column("owner_public_key", sa.String(64), nullable=True),
    sa.Column("owner_verified", sa.Integer(), nullable=False, server_default="0"),
    version_column(),
    epoch("created_at"),
    epoch("updated_at"),
    sa.CheckConstraint("status IN ('ACTIVE', 'SUSPENDED', 'TERMINATED')", name="status"),
    sa.CheckConstraint("owner_verified IN (0, 1)", name="owner_verified"),
    sa.Index(None, "status"),
)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
    sa.Column("balance", sa.BigInteger(), nullable=False, server_default="0"),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
    sa.CheckConstraint(amounts.kept_check("balance"), name="balance_kept"),
)
