"""The operators' table: token digests. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, id_column, metadata

operators = sa.Table(
    "operators",
    metadata,
    id_column(),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    epoch("created_at"),
)
