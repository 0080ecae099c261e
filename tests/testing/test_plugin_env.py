"""The plugin's fixtures are overridable: settings and the database (both engines here)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from racefree.testing import Server, http_race, tally_responses

pytestmark = pytest.mark.server


@pytest.fixture
def racefree_server_env() -> Mapping[str, str]:
    return {"RACEFREE_SESSION_EXPIRES_IN": "77"}


@pytest.fixture
def racefree_database_url(db_url: str) -> str:
    return db_url  # this project's SQLite / PostgreSQL fixture


def test_settings_and_database_reach_the_server(racefree_server: Server) -> None:
    with racefree_server.api() as ops:
        agent = ops.agents.create("env")
        assert ops.sessions.open(agent.id).expires_in == 77
    answers = http_race(
        10,
        racefree_server.base_url,
        "POST",
        "/v1/kill-switch/activate",
        headers=racefree_server.operator_headers(),
        json={"reason": "race"},
    )
    assert tally_responses(answers) == {"200": 1, "KILL_SWITCH_ALREADY_ACTIVE": 9}
