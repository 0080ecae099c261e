"""core.condition: fragments with their own, automatically namespaced parameters."""

from __future__ import annotations

import pytest

from racefree.core.condition import TRUE, Condition
from racefree.core.db import Database


def test_two_conditions_naming_the_same_parameter_never_collide() -> None:
    a = Condition.of("x = :id", id=1)
    b = Condition.of("y = :id", id=2)
    both = a & b
    assert sorted(both.params.values()) == [1, 2]
    assert len(both.params) == 2
    assert ":id" not in both.sql


def test_casts_are_not_parameters() -> None:
    c = Condition.of("x::text = :v", v="1")
    assert "::text" in c.sql
    assert list(c.params.values()) == ["1"]


def test_a_missing_value_is_refused() -> None:
    with pytest.raises(ValueError, match="no value"):
        Condition.of("x = :v")


def test_true_is_the_identity_of_and() -> None:
    c = Condition.of("x = :v", v=1)
    assert (TRUE & c) is c
    assert (c & TRUE) is c


def test_conditions_run_on_the_database(db: Database) -> None:
    with db.write() as tx:
        tx.execute("CREATE TABLE cond_probe (id INTEGER PRIMARY KEY, kind TEXT, n INTEGER)")
        for i in range(6):
            tx.execute(
                "INSERT INTO cond_probe (id, kind, n) VALUES (:id, :kind, :n)",
                {"id": i, "kind": "even" if i % 2 == 0 else "odd", "n": i},
            )
        where = Condition.of("kind = :v", v="even") & (
            Condition.of("n > :v", v=0) | Condition.of("n = :v", v=0)
        )
        changed = tx.execute(
            f"UPDATE cond_probe SET n = n + :v WHERE {where.sql}", where.bind({"v": 100})
        )
        assert changed == 3
        assert tx.scalar("SELECT SUM(n) FROM cond_probe WHERE kind = 'even'") == 306
