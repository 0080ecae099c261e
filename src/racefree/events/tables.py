"""The events' tables. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, id_column, metadata

webhooks = sa.Table(
    "webhooks",
    metadata,
    id_column(),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("event_types", sa.Text(), nullable=False),  # JSON list; [] = every type
    sa.Column("secret", sa.Text(), nullable=False),  # encrypted (events.secrets)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
    # the outbox position delivered up to: (txid, id) of the last event handled
    sa.Column("cursor_txid", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("cursor_id", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at_ms", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("disabled_reason", sa.Text(), nullable=True),
    epoch("created_at"),
    epoch("updated_at"),
    sa.CheckConstraint("status IN ('ACTIVE', 'DISABLED')", name="status"),
    sa.Index(None, "status", "next_attempt_at_ms"),
)


webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    id_column(),
    sa.Column("webhook_id", sa.String(36), sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("event_id", sa.BigInteger(), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("outcome IN ('SUCCEEDED', 'FAILED')", name="outcome"),
    sa.Index(None, "webhook_id", "id"),
)
