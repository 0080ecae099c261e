"""Edges (issue 9): retired session tokens, the audit hash chain, kept sums bounded.

* ``session_retired_tokens``: every token a renewal replaced, so any of them
  coming back is reuse;
* ``audit_log.chain_hash`` and the chain head ``audit_chain``; existing entries
  are chained in id order (their append-only triggers are lifted for that one
  UPDATE); SQLite also refuses an INSERT that would replace an entry;
* ``plan_group_quota``: the per-agent count of plan groups, counted from the
  existing groups;
* CHECK constraints bound the sums the database keeps (``accounts.balance``,
  ``sessions.reserved`` / ``spent``, AutoStop's ``agent_figures.confirmed_today``)
  to 0..10^18 (``core.amounts``). On
  PostgreSQL they are added NOT VALID: enforced for every write from now on,
  without refusing to migrate a database that an old version let past it.

Revision ID: 0008
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from alembic import op

from racefree.core import amounts, audit

#: (table, constraint name, column) of every kept sum
_KEPT = (
    ("accounts", "balance_kept", "balance"),
    ("sessions", "reserved_kept", "reserved"),
    ("sessions", "spent_kept", "spent"),
    ("agent_figures", "confirmed_today_kept", "confirmed_today"),  # AutoStop (0012)
)

_REFUSE = "audit_log is append-only"
_SQLITE_NO_UPDATE = (
    f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN"
    f" SELECT RAISE(ABORT, '{_REFUSE}'); END"
)
# INSERT OR REPLACE deletes the old row without firing DELETE triggers: refuse the insert itself
_SQLITE_NO_REPLACE = (
    "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log"
    " WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)"
    f" BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
)

revision = "0008"
down_revision = "0012"
branch_labels = None
depends_on = None

T = TypeVar("T")


def upgrade() -> None:
    _retired_tokens()
    _audit_chain()
    _kept_sums()
    _plan_group_quota()


def downgrade() -> None:
    op.drop_table("plan_group_quota")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, name, _ in _KEPT:
        if sqlite:  # the batch rebuild names it by the metadata's convention (ck_<table>_<name>)
            with op.batch_alter_table(table, recreate="always") as batch:
                batch.drop_constraint(name, type_="check")
        else:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ck_{table}_{name}")
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_replace")
    op.drop_table("audit_chain")
    _without_update_trigger(lambda: op.drop_column("audit_log", "chain_hash"))
    op.drop_index("ix_session_retired_tokens_session_id", table_name="session_retired_tokens")
    op.drop_table("session_retired_tokens")


def _retired_tokens() -> None:
    op.create_table(
        "session_retired_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey(
                "sessions.id",
                name="fk_session_retired_tokens_session_id_sessions",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("retired_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_session_retired_tokens"),
    )
    op.create_index(
        "ix_session_retired_tokens_session_id", "session_retired_tokens", ["session_id"]
    )
    # the tokens that renewals already replaced: the last one of each session is known
    op.execute(
        "INSERT INTO session_retired_tokens (token_hash, session_id, retired_at)"
        " SELECT previous_token_hash, id, COALESCE(last_renewed_at, created_at) FROM sessions"
        " WHERE previous_token_hash IS NOT NULL"
    )


def _audit_chain() -> None:
    op.add_column("audit_log", sa.Column("chain_hash", sa.String(64), nullable=True))
    op.create_table(
        "audit_chain",
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("last_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_audit_chain"),
    )
    head = _without_update_trigger(_chain_existing_entries)
    op.execute(
        sa.text(
            "INSERT INTO audit_chain (scope, last_id, last_hash) VALUES (:scope, :id, :hash)"
        ).bindparams(scope=audit.CHAIN_SCOPE, id=head[0], hash=head[1])
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE_NO_REPLACE)


def _chain_existing_entries() -> tuple[int, str]:
    bind = op.get_bind()
    previous_id, previous_hash = 0, audit.GENESIS
    rows = bind.execute(sa.text("SELECT * FROM audit_log ORDER BY id")).mappings().all()
    for row in rows:
        previous_hash = audit.link(previous_hash, row["id"], audit.payload(dict(row)))
        previous_id = row["id"]
        bind.execute(
            sa.text("UPDATE audit_log SET chain_hash = :h WHERE id = :id"),
            {"h": previous_hash, "id": previous_id},
        )
    return previous_id, previous_hash


def _without_update_trigger(work: Callable[[], T]) -> T:
    """Run ``work`` with the append-only UPDATE trigger lifted (only inside this migration)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        result = work()
        op.execute(_SQLITE_NO_UPDATE)
        return result
    op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
    result = work()
    op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")
    return result


def _kept_sums() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name, column in _KEPT:
            op.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_{name}"
                f" CHECK ({amounts.kept_check(column)}) NOT VALID"
            )
        return
    # SQLite adds a CHECK by rebuilding the table
    for table in ("accounts", "sessions", "agent_figures"):
        with op.batch_alter_table(table, recreate="always") as batch:
            for kept_table, name, column in _KEPT:
                if kept_table == table:
                    batch.create_check_constraint(name, amounts.kept_check(column))


def _plan_group_quota() -> None:
    op.create_table(
        "plan_group_quota",
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", name="fk_plan_group_quota_agent_id_agents"),
            nullable=False,
        ),
        sa.Column("plan_groups", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_plan_group_quota"),
    )
    op.execute(
        "INSERT INTO plan_group_quota (agent_id, plan_groups) SELECT agent_id, COUNT(*)"
        " FROM plan_groups WHERE agent_id IS NOT NULL GROUP BY agent_id"
    )
