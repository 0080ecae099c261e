"""operators: first start creates credentials exactly once; only hashes are stored."""

from __future__ import annotations

from racefree import operators
from racefree.core import tokens
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.operators import OPERATOR_PREFIX
from racefree.testing import race, tally


def _stored_secrets(db: Database) -> list[str]:
    with db.read() as tx:
        rows = tx.all("SELECT value FROM system_settings") + tx.all(
            "SELECT token_hash AS value FROM operators"
        )
    return [r["value"] for r in rows]


def test_first_start_generates_a_password_and_a_token_once(
    db: Database, clock: ManualClock
) -> None:
    first = operators.bootstrap(db, master_password=None, now=clock.now())
    assert first.master_password and first.operator_token
    assert operators.bootstrap(db, master_password=None, now=clock.now()) == operators.FirstStart(
        None, None
    )
    stored = _stored_secrets(db)
    assert all(first.master_password not in v and first.operator_token not in v for v in stored)
    with db.read() as tx:
        assert operators.check_master_password(tx, first.master_password)
        assert operators.authenticate(tx, first.operator_token).label == "first-start"


def test_a_password_from_the_environment_is_used_and_not_shown(
    db: Database, clock: ManualClock
) -> None:
    first = operators.bootstrap(db, master_password="from-env", now=clock.now())
    assert first.master_password is None and first.operator_token is not None
    with db.read() as tx:
        assert operators.check_master_password(tx, "from-env")
        assert not operators.check_master_password(tx, "wrong")


def test_processes_starting_together_create_one_operator_token(
    db: Database, clock: ManualClock
) -> None:
    outcomes = race(6, lambda i: operators.bootstrap(db, master_password="pw", now=clock.now()))
    assert tally(outcomes) == {"won": 6}
    assert sum(o.value.operator_token is not None for o in outcomes) == 1
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM operators") == 1


def test_created_tokens_authenticate_and_are_audited(db: Database, clock: ManualClock) -> None:
    with db.write() as tx:
        token = operators.create_token(tx, label="ci", now=clock.now())
    assert tokens.well_formed(token, OPERATOR_PREFIX)
    with db.read() as tx:
        assert operators.authenticate(tx, token).label == "ci"
        assert (
            tx.scalar("SELECT COUNT(*) FROM audit_log WHERE event_type = 'OPERATOR_TOKEN_CREATED'")
            == 1
        )
