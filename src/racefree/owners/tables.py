"""The owners' table: single-use signature nonces. Defined on core's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa

from racefree.core.schema import epoch, metadata

nonces = sa.Table(
    "nonces",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    epoch("expires_at"),
    sa.Index(None, "expires_at"),  # issuing a nonce sweeps the expired ones
)
