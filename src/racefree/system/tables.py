"""The system's tables: settings stored at first start. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, metadata

system_settings = sa.Table(
    "system_settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    epoch("updated_at"),
)
