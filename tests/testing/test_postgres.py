"""wait_until_blocked sees a PostgreSQL writer waiting on a lock, by URL or by Database."""

from __future__ import annotations

import threading

import psycopg
import pytest

from racefree.core.db import Database
from racefree.testing import wait_until_blocked


@pytest.mark.parametrize("engine", ["postgresql"])
@pytest.mark.parametrize("by", ["url", "database"])
def test_returns_once_a_second_writer_blocks_behind_the_first(
    db_url: str, db: Database, by: str
) -> None:
    url = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as holder:
        holder.execute("SELECT state FROM kill_switch WHERE scope = 'global' FOR UPDATE")
        finished = threading.Event()

        def second_writer() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("UPDATE kill_switch SET version = version WHERE scope = 'global'")
            finished.set()

        writer = threading.Thread(target=second_writer)
        writer.start()
        wait_until_blocked(url if by == "url" else db, timeout=10)
        assert not finished.is_set()  # it really waits on the holder's lock
        holder.commit()
        writer.join(timeout=10)
    assert finished.is_set()


@pytest.mark.parametrize("engine", ["postgresql"])
def test_gives_up_when_nothing_waits(db_url: str) -> None:
    with pytest.raises(AssertionError, match="no statement ever waited"):
        wait_until_blocked(db_url, timeout=0.2)
