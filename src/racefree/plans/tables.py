"""The plans' tables: plan groups and their generated plans. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, id_column, metadata, version_column

plan_groups = sa.Table(
    "plan_groups",
    metadata,
    id_column(),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("start_date", sa.String(10), nullable=False),
    sa.Column("end_date", sa.String(10), nullable=False),
    sa.Column("items", sa.Text(), nullable=False),
    sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("fencing_token", sa.BigInteger(), nullable=False, server_default="0"),
    epoch("generated_at", nullable=True),
    version_column(),
    epoch("created_at"),
)


#: How many plan groups each agent owns: the counter the per-agent quota's CAS guards.
plan_group_quota = sa.Table(
    "plan_group_quota",
    metadata,
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
    sa.Column("plan_groups", sa.Integer(), nullable=False),
)


plans = sa.Table(
    "plans",
    metadata,
    id_column(),
    sa.Column("plan_group_id", sa.String(36), sa.ForeignKey("plan_groups.id"), nullable=False),
    sa.Column("generation", sa.Integer(), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("item", sa.String(200), nullable=False),
    sa.Column("units", sa.Integer(), nullable=False),
    sa.Index(None, "plan_group_id", "generation"),
)
