"""The kill switch's table: one row per scope. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, metadata

kill_switch = sa.Table(
    "kill_switch",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("activation_id", sa.String(36), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("actor", sa.String(200), nullable=True),
    epoch("activated_at", nullable=True),
    epoch("recovery_started_at", nullable=True),
    epoch("recovery_eligible_at", nullable=True),
    sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"),
    epoch("lockout_until", nullable=True),
    epoch("updated_at"),
    sa.CheckConstraint("state IN ('NORMAL', 'ACTIVATED', 'RECOVERING')", name="state"),
)
