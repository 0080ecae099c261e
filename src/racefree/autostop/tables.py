"""The AutoStop tables. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core import amounts
from racefree.core.schema import epoch, id_column, metadata
from racefree.transactions.tables import transactions

auto_stop_rules = sa.Table(
    "auto_stop_rules",
    metadata,
    id_column(),
    # '*' for a global rule, else the agent's id: one rule per (scope, type)
    sa.Column("scope", sa.String(36), nullable=False),
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("params", sa.Text(), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
    epoch("created_at"),
    epoch("updated_at"),
    sa.UniqueConstraint("scope", "type"),
    sa.CheckConstraint("action IN ('WARN', 'SUSPEND_AGENT', 'KILL_SWITCH')", name="action"),
    sa.CheckConstraint("enabled IN (0, 1)", name="enabled"),
)


agent_figures = sa.Table(
    "agent_figures",
    metadata,
    sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
    # FAILED transactions since the last CONFIRMED one
    sa.Column("consecutive_failures", sa.BigInteger(), nullable=False, server_default="0"),
    # the sum of CONFIRMED amounts on UTC day ``day`` (epoch days)
    sa.Column("day", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("confirmed_today", sa.BigInteger(), nullable=False, server_default="0"),
    epoch("updated_at"),
    sa.CheckConstraint("consecutive_failures >= 0", name="failures_not_negative"),
    sa.CheckConstraint("confirmed_today >= 0", name="confirmed_not_negative"),
    # a kept sum (core.amounts): the update saturates at 10^18 (far above any daily limit)
    sa.CheckConstraint(amounts.kept_check("confirmed_today"), name="confirmed_today_kept"),
)


# the figures rules count in SQL: an agent's transactions by time, by destination
sa.Index("ix_transactions_agent_id_created_at", transactions.c.agent_id, transactions.c.created_at)


sa.Index(
    "ix_transactions_agent_id_destination_confirmed_at",
    transactions.c.agent_id,
    transactions.c.destination,
    transactions.c.confirmed_at,
)


# an agent's unfinished transactions, whose amounts DAILY_LIMIT adds at every admission (0013)
_OPEN = sa.text("status IN ('PENDING', 'QUEUED', 'EXECUTING', 'SUBMITTED')")


sa.Index(
    "ix_transactions_agent_id_open",
    transactions.c.agent_id,
    sqlite_where=_OPEN,
    postgresql_where=_OPEN,
)
