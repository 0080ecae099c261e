"""The shared MetaData, its column helpers, and core's own tables.

Every layer defines its tables beside its code (``racefree.<layer>.tables``) on
:data:`metadata`; ``racefree.schema`` imports them all. Core's own tables are its
mechanisms': the audit log and its chain head, lease locks and their fencing tokens,
and stored Idempotency-Key replies. Alembic migrations create the schema;
``tests/migrations/test_schema.py`` checks they agree.

Conventions: timestamps are integer epoch seconds (UTC) unless named ``_ms``;
ids are UUIDv7 text; amounts are integers in minor units; JSON is stored as
text so both engines return the same thing.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def epoch(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def version_column() -> sa.Column[int]:
    """The row's version (``ETag``): every UPDATE bumps it, by a trigger (migration 0010)."""
    return sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")


def id_column(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(36), primary_key=True)


audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    epoch("at"),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("agent_id", sa.String(36), nullable=True),
    sa.Column("session_id", sa.String(36), nullable=True),
    sa.Column("transaction_id", sa.String(36), nullable=True),
    sa.Column("details", sa.Text(), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True),
    # issue 12: the id of the inserting transaction (PostgreSQL ``pg_current_xact_id()``,
    # a column default set by migration 0012; 0 on SQLite, where commit order is id order).
    # Events are read in (txid, id) order below the oldest running transaction: gap-free.
    sa.Column("txid", BigInt, nullable=False, server_default="0"),
    # sha256 hex of the previous entry's chain_hash, this id and this content (core.audit)
    sa.Column("chain_hash", sa.String(64), nullable=True),
    sa.CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),
    sa.Index(None, "event_type", "id"),
    sa.Index(None, "agent_id", "id"),
    sa.Index(None, "txid", "id"),
)

#: The head of the audit log's hash chain: one row, the serialisation point of appenders.
audit_chain = sa.Table(
    "audit_chain",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("last_id", BigInt, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)


locks = sa.Table(
    "locks",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("token", sa.BigInteger(), nullable=False),
    sa.Column("acquired_at_ms", sa.BigInteger(), nullable=False),
    sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
)

lock_tokens = sa.Table(
    "lock_tokens",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("last_token", sa.BigInteger(), nullable=False),
)


idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # the credential's hash: keys of different clients never meet
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response_status", sa.Integer(), nullable=True),
    sa.Column("response_headers", sa.Text(), nullable=True),
    # sealed with a key derived from the credential: a stored token is unreadable without it
    sa.Column("response_body", sa.LargeBinary(), nullable=True),
    epoch("created_at"),
    epoch("expires_at"),
    sa.Index(None, "expires_at"),  # the sweep
)
