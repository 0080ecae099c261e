"""Alembic environment: online migrations only, one transaction, serialized on PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from racefree.schema import metadata

# Two servers starting at once must not both migrate: on PostgreSQL the
# migration transaction holds this advisory lock (any fixed 64-bit value).
MIGRATION_LOCK_KEY = 0x7261636566726565  # "racefree"


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("racefree migrations run online only: use `racefree db upgrade`")
run_migrations_online()
